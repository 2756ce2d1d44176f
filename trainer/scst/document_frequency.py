"""CIDEr-D document frequencies of a fixed reference set, plus every image's references as word ids.

Self-critical training rewards a sampled caption by its CIDEr-D against its image's references with the document
frequencies of the whole training split (the evaluation metric takes them from the evaluated set; a mini-batch is far
too small for that). References are tokenized like the metric (``trainer.evaluation.metrics.ptb_tokenize``) and stored as ids
into ``words`` (every distinct reference token), so the reward later needs no strings at all.

N-gram ids: a unigram's code is its word id; an n-gram's code is ``id(prefix (n-1)-gram) * len(words) + word``. The
sorted codes of order n are ``gram_codes[n-1]``; an n-gram's id is its position there and ``gram_df[n-1]`` holds the
number of images whose references contain it. Saved as safetensors (no pickle); lists go in as UTF-8 JSON bytes.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

from trainer.evaluation.metrics import ptb_tokenize

FORMAT = "showattend-cider-df"
VERSION = 1


@dataclass
class CiderDocumentFrequencies:
    words: list[str]            # distinct reference tokens; a token's index is its word id
    image_ids: list[str]        # image i's references are refs_per_image[i] consecutive rows of ref_tokens
    gram_codes: list[np.ndarray]  # per order: sorted int64 n-gram codes (see the module docstring)
    gram_df: list[np.ndarray]   # per order: int64 number of images whose references hold the n-gram
    ref_tokens: np.ndarray      # (total tokens,) int64 word ids of every reference, image-major
    ref_lengths: np.ndarray     # (references,) int64 tokens per reference
    refs_per_image: np.ndarray  # (images,) int64
    fingerprint: str = ""       # what the references were read from (checked by the cache)

    @property
    def num_images(self) -> int:
        return len(self.image_ids)

    @property
    def max_order(self) -> int:
        return len(self.gram_codes)

    @classmethod
    def from_references(cls, image_ids: Sequence[str], references: Sequence[Sequence[str]], max_order: int = 4,
                        fingerprint: str = "") -> "CiderDocumentFrequencies":
        """Tokenize raw reference captions (one list per image) with the metric's PTB tokenizer and count."""
        if len(image_ids) != len(references):
            raise ValueError(f"{len(image_ids)} image ids but {len(references)} reference lists")
        if len(set(image_ids)) != len(image_ids):
            raise ValueError("image ids must be unique to look references up by id")
        for image_id, refs in zip(image_ids, references):
            if isinstance(refs, str) or not refs:
                raise ValueError(f"image {image_id!r}: expected a non-empty list of reference captions, got {refs!r}")
        tokenized = [ptb_tokenize(ref) for refs in references for ref in refs]
        words = sorted({word for tokens in tokenized for word in tokens})
        word_id = {word: index for index, word in enumerate(words)}
        ref_tokens = np.fromiter((word_id[word] for tokens in tokenized for word in tokens), dtype=np.int64)
        ref_lengths = np.fromiter(map(len, tokenized), dtype=np.int64, count=len(tokenized))
        refs_per_image = np.fromiter(map(len, references), dtype=np.int64, count=len(references))
        codes, df = _count_document_frequencies(ref_tokens, ref_lengths, refs_per_image, len(words), max_order)
        return cls(words, list(map(str, image_ids)), codes, df, ref_tokens, ref_lengths, refs_per_image, fingerprint)

    def digest(self) -> str:
        """Short sha256 of everything the reward depends on (DDP ranks compare it)."""
        digest = hashlib.sha256(json.dumps([self.words, self.image_ids]).encode())
        for array in (*self.gram_codes, *self.gram_df, self.ref_tokens, self.ref_lengths, self.refs_per_image):
            digest.update(np.ascontiguousarray(array, dtype=np.int64).tobytes())
        return digest.hexdigest()[:16]

    def save(self, path: str | Path) -> None:
        """Write safetensors to ``path`` (callers make it atomic by writing a temporary name, then renaming)."""
        tensors = {"words": _json_bytes(self.words), "image_ids": _json_bytes(self.image_ids),
                   "ref_tokens": self.ref_tokens, "ref_lengths": self.ref_lengths,
                   "refs_per_image": self.refs_per_image}
        for order, (codes, df) in enumerate(zip(self.gram_codes, self.gram_df), start=1):
            tensors[f"codes_{order}"], tensors[f"df_{order}"] = codes, df
        metadata = {"format": FORMAT, "version": str(VERSION), "max_order": str(self.max_order),
                    "fingerprint": self.fingerprint}
        save_file({name: np.ascontiguousarray(array) for name, array in tensors.items()}, str(path), metadata=metadata)

    @classmethod
    def load(cls, path: str | Path) -> "CiderDocumentFrequencies":
        """Read a file written by ``save``; anything else raises ValueError naming the file and what is wrong."""
        try:
            with safe_open(str(path), framework="numpy") as handle:
                metadata = handle.metadata() or {}
            tensors = load_file(str(path))
        except Exception as error:  # noqa: BLE001 - any unreadable file gets one clear message
            raise ValueError(f"{path}: not a readable safetensors file ({error})") from None
        if metadata.get("format") != FORMAT or metadata.get("version") != str(VERSION):
            raise ValueError(f"{path}: expected format {FORMAT!r} version {VERSION}, got "
                             f"{metadata.get('format')!r} version {metadata.get('version')!r}")
        max_order = int(metadata["max_order"])
        expected = {"words", "image_ids", "ref_tokens", "ref_lengths", "refs_per_image",
                    *(f"{kind}_{order}" for kind in ("codes", "df") for order in range(1, max_order + 1))}
        if set(tensors) != expected:
            raise ValueError(f"{path}: tensors {sorted(tensors)}, expected {sorted(expected)}")
        return cls(json.loads(tensors["words"].tobytes()), json.loads(tensors["image_ids"].tobytes()),
                   [tensors[f"codes_{order}"] for order in range(1, max_order + 1)],
                   [tensors[f"df_{order}"] for order in range(1, max_order + 1)],
                   tensors["ref_tokens"], tensors["ref_lengths"], tensors["refs_per_image"],
                   metadata.get("fingerprint", ""))


def _json_bytes(values: list) -> np.ndarray:
    return np.frombuffer(json.dumps(values, ensure_ascii=False).encode("utf-8"), dtype=np.uint8)


def _count_document_frequencies(tokens: np.ndarray, lengths: np.ndarray, refs_per_image: np.ndarray,
                                num_words: int, max_order: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Sorted n-gram codes and document frequencies per order (images, not references, are the documents)."""
    image_of_token = np.repeat(np.repeat(np.arange(len(refs_per_image), dtype=np.int64), refs_per_image), lengths)
    words_left = np.repeat(np.cumsum(lengths), lengths) - np.arange(len(tokens))  # tokens left in the reference
    prefix_ids = tokens
    codes_per_order, df_per_order = [], []
    for order in range(max_order):
        starts = np.flatnonzero(words_left > order)
        codes = tokens[starts] if order == 0 else prefix_ids[starts] * max(num_words, 1) + tokens[starts + order]
        unique_codes, gram_ids = np.unique(codes, return_inverse=True)
        image_gram = np.unique(image_of_token[starts] * max(len(unique_codes), 1) + gram_ids)
        codes_per_order.append(unique_codes.astype(np.int64))
        df_per_order.append(np.bincount(image_gram % max(len(unique_codes), 1),
                                        minlength=len(unique_codes)).astype(np.int64))
        prefix_ids = np.zeros(len(tokens), dtype=np.int64)
        prefix_ids[starts] = gram_ids
    return codes_per_order, df_per_order
