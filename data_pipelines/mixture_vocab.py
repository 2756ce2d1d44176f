"""One vocabulary for a mixture of prepared datasets: ``showattend-prepare vocab --from A B ... --out VOCAB.json``.

The words are counted over the train captions of every source (their ``.json`` shard members only), with the same
rules as ``prepare`` (``--min-word-freq``, ``--max-caption-len``), so a word frequent enough in any one source is in the
mixture's vocabulary. A run names the file as ``data.vocab``; every source's captions are tokenized with it when they
are batched (shards hold raw captions), so sources prepared with other vocabularies need no re-preparing.
"""
from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path
from typing import Sequence

from data_pipelines.data_root import DataRoot, is_remote
from data_pipelines.shard_members import split_samples
from data_pipelines.vocab import Vocabulary, count_words


def build_mixture_vocabulary(roots: Sequence[str], min_freq: int = 5, max_len: int | None = None,
                             split: str = "train") -> Vocabulary:
    """The vocabulary of the ``split`` captions of all ``roots`` (folders or URLs) together."""
    counts: Counter[str] = Counter()
    for root in roots:
        counts.update(count_words((caption for sample in split_samples(root, split) for caption in sample.captions),
                                  max_len))
    if not counts:
        raise ValueError(f"the {split} splits of {list(roots)} hold no caption words")
    return Vocabulary.from_counts(counts, min_freq)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="roots", nargs="+", required=True, metavar="ROOT",
                        help="prepared datasets (folders or URLs) whose train captions make the vocabulary")
    parser.add_argument("--out", required=True, type=Path, help="the vocabulary file to write (e.g. mix_vocab.json)")
    parser.add_argument("--min-word-freq", type=int, default=5, help="min train count of a word over all sources")
    parser.add_argument("--max-caption-len", type=int, default=None,
                        help="count only the first N words of each caption (the loader's cap)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file")


def write_mixture_vocabulary(args: argparse.Namespace) -> Vocabulary:
    """``--out`` written from ``--from``; ValueError for a bad count or an --out that exists or lies in a source."""
    if args.min_word_freq < 1 or (args.max_caption_len is not None and args.max_caption_len < 1):
        raise ValueError("--min-word-freq and --max-caption-len must be >= 1")
    out = args.out
    if out.exists() and not (args.overwrite and out.is_file()):
        raise ValueError(f"--out {out} exists (pass --overwrite to replace a file)")
    for root in args.roots:
        if not is_remote(root) and Path(DataRoot(root).location).resolve() in out.absolute().parents:
            raise ValueError(f"--out {out} lies inside the prepared dataset {root}; write it elsewhere")
    vocab = build_mixture_vocabulary(args.roots, args.min_word_freq, args.max_caption_len)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    vocab.save(partial)
    partial.replace(out)
    return vocab
