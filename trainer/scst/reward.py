"""Per-caption CIDEr-D rewards of sampled token ids, vectorised over a whole batch (no strings).

What the reward is, precisely: a sampled caption is the vocabulary words of its ids before the first ``<eos>`` (all
of them when there is none); ``<unk>`` and any word that never occurs in the reference set are words that match no
reference n-gram. Its reward is coco-caption's CIDEr-D (sigma 6, clipped tf-idf, x10) against its image's references,
tokenized as the metric tokenizes them (``trainer.evaluation.metrics.ptb_tokenize``), with the document frequencies and image
count of a fixed ``CiderDocumentFrequencies`` (the training split). So whenever ``ptb_tokenize(vocab.decode(ids))``
equals the caption's vocabulary words (ordinary captions; not ``<unk>``), the reward equals what ``trainer.evaluation.metrics``
and pycocoevalcap 1.2 give that caption with those document frequencies.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from trainer.evaluation.metrics.ngrams import lookup
from trainer.scst.document_frequency import CiderDocumentFrequencies


class CiderDReward:
    """``reward(image_ids, tokens)``: (B, S) float64 CIDEr-D of ``tokens`` (B, S, L) against each image's references."""

    def __init__(self, frequencies: CiderDocumentFrequencies, vocab_words: Sequence[str], eos_id: int,
                 sigma: float = 6.0):
        self.frequencies, self.eos_id, self.sigma = frequencies, eos_id, sigma
        self.num_words = len(frequencies.words)
        word_id = {word: index for index, word in enumerate(frequencies.words)}
        # vocabulary id -> reference word id; a vocabulary word absent from the references gets an id of its own
        # past the reference words (it matches nothing, but repeats of it still count in the caption's own vector).
        self.vocab_to_word = np.array([word_id.get(word, self.num_words + index)
                                       for index, word in enumerate(vocab_words)], dtype=np.int64)
        self.id_base = self.num_words + len(vocab_words)  # every word id in a batch is below this
        self.image_index = {image_id: index for index, image_id in enumerate(frequencies.image_ids)}
        self.first_token = np.cumsum(frequencies.ref_lengths) - frequencies.ref_lengths
        self.first_ref = np.cumsum(frequencies.refs_per_image) - frequencies.refs_per_image
        self.log_num_images = np.log(float(frequencies.num_images))

    def __call__(self, image_ids: Sequence[str], tokens: torch.Tensor | np.ndarray) -> np.ndarray:
        tokens = tokens.detach().cpu().numpy() if isinstance(tokens, torch.Tensor) else np.asarray(tokens)
        if tokens.ndim != 3 or tokens.shape[0] != len(image_ids):
            raise ValueError(f"tokens must be (B, S, L) with B={len(image_ids)} images, got shape {tokens.shape}")
        missing = [image_id for image_id in image_ids if image_id not in self.image_index]
        if missing:
            raise KeyError(f"{len(missing)} image id(s) have no references in the document-frequency table "
                           f"({self.frequencies.fingerprint or 'in memory'}): {missing[:5]}")
        images = np.fromiter((self.image_index[image_id] for image_id in image_ids), dtype=np.int64,
                             count=len(image_ids))
        batch, samples, max_len = tokens.shape
        flat = tokens.reshape(batch * samples, max_len).astype(np.int64)
        is_eos = flat == self.eos_id
        lengths = np.where(is_eos.any(axis=1), is_eos.argmax(axis=1), max_len)
        candidate_words = self.vocab_to_word[flat[np.arange(max_len)[None, :] < lengths[:, None]]]
        return self._scores(images, samples, candidate_words, lengths).reshape(batch, samples)

    def _references(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Word ids, lengths and refs-per-image of the given images' references (image-major)."""
        table = self.frequencies
        counts = table.refs_per_image[images]
        refs = np.repeat(self.first_ref[images] - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
        lengths = table.ref_lengths[refs]
        positions = np.repeat(self.first_token[refs] - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())
        return table.ref_tokens[positions], lengths, counts

    def _scores(self, images: np.ndarray, samples: int, candidate_words: np.ndarray,
                candidate_lengths: np.ndarray) -> np.ndarray:
        """CIDEr-D of candidates (image-major, ``samples`` per image) against their images' references."""
        ref_words, ref_lengths, refs_per_image = self._references(images)
        num_candidates, num_refs, max_order = len(candidate_lengths), len(ref_lengths), self.frequencies.max_order
        words = np.concatenate([candidate_words, ref_words])
        lengths = np.concatenate([candidate_lengths, ref_lengths])  # sentences: candidates, then references
        sentence, gram, order, gram_weight = self._ngram_entries(words, lengths, max_order)
        keys, counts = np.unique(sentence * len(gram_weight) + gram, return_counts=True)
        sentence, gram = keys // len(gram_weight), keys % len(gram_weight)
        weight = counts * gram_weight[gram]
        order = order[gram]

        num_sentences = len(lengths)
        norm = np.sqrt(np.bincount(sentence * max_order + order, weights=weight ** 2,
                                   minlength=num_sentences * max_order)).reshape(num_sentences, max_order)
        bigrams = np.maximum(lengths - 1, 0)  # coco-caption's "length": the caption's bigram count

        # Pair every reference entry with each of its image's candidates; look the candidate's entry up by key.
        ref_image = np.repeat(np.arange(len(images)), refs_per_image)
        is_ref = sentence >= num_candidates
        ref_sentence, ref_gram, ref_weight, ref_order = (sentence[is_ref] - num_candidates, gram[is_ref],
                                                         weight[is_ref], order[is_ref])
        sample = np.repeat(np.arange(samples), len(ref_sentence))
        paired_candidate = np.tile(ref_image[ref_sentence], samples) * samples + sample
        # candidate entries are sorted by key: candidates are sentences 0..num_candidates-1
        position, shared = lookup(keys[~is_ref], paired_candidate * len(gram_weight) + np.tile(ref_gram, samples))
        paired_ref_weight = np.tile(ref_weight, samples)[shared]
        clipped = np.minimum(weight[~is_ref][position[shared]], paired_ref_weight) * paired_ref_weight
        pair = (sample[shared] * num_refs + np.tile(ref_sentence, samples)[shared]) * max_order \
            + np.tile(ref_order, samples)[shared]
        dot = np.bincount(pair, weights=clipped, minlength=samples * num_refs * max_order)
        dot = dot.reshape(samples, num_refs, max_order)

        candidate_of_pair = ref_image[None, :] * samples + np.arange(samples)[:, None]  # (S, R)
        denominator = norm[candidate_of_pair] * norm[num_candidates:][None]
        similarity = np.where(denominator != 0, dot / np.where(denominator != 0, denominator, 1.0), dot)
        delta = (bigrams[candidate_of_pair] - bigrams[num_candidates:][None]).astype(np.float64)
        similarity = similarity.mean(axis=2) * np.e ** (-(delta ** 2) / (2 * self.sigma ** 2))
        first = np.cumsum(refs_per_image) - refs_per_image
        scores = np.add.reduceat(similarity, first, axis=1) / refs_per_image * 10.0  # (S, B)
        return scores.T.reshape(-1)

    def _ngram_entries(self, words: np.ndarray, lengths: np.ndarray, max_order: int):
        """Every n-gram occurrence as (sentence, batch gram id, ...); per batch gram its order and idf weight."""
        table = self.frequencies
        owner = np.repeat(np.arange(len(lengths)), lengths)
        words_left = np.repeat(np.cumsum(lengths), lengths) - np.arange(len(words))
        batch_prefix, table_prefix = words, np.where(words < self.num_words, words, -1)
        entry_sentence, entry_gram, gram_order, gram_df = [], [], [], []
        offset = 0
        for order in range(max_order):
            starts = np.flatnonzero(words_left > order)
            last = words[starts + order]
            if order == 0:
                batch_code, table_code = last, table_prefix[starts]
            else:  # table codes exist only for n-grams whose prefix and last word are in the table
                known = (table_prefix[starts] >= 0) & (last < self.num_words)
                batch_code = batch_prefix[starts] * self.id_base + last
                table_code = np.where(known, table_prefix[starts] * self.num_words + last, -1)
            unique_codes, first, batch_ids = np.unique(batch_code, return_index=True, return_inverse=True)
            batch_ids = batch_ids.reshape(-1)
            # Look each distinct n-gram up once, in sorted order: searchsorted on sorted queries stays in cache.
            gram_code = table_code[first]
            by_code = np.argsort(gram_code)
            sorted_position, sorted_found = lookup(table.gram_codes[order], gram_code[by_code])  # -1: no code
            position = np.full(len(gram_code), -1, dtype=np.int64)
            position[by_code] = np.where(sorted_found, sorted_position, -1)
            frequency = np.where(position >= 0, table.gram_df[order][np.maximum(position, 0)], 0) \
                if len(table.gram_df[order]) else np.zeros(len(gram_code), dtype=np.int64)
            entry_sentence.append(owner[starts])
            entry_gram.append(batch_ids + offset)
            gram_order.append(np.full(len(unique_codes), order, dtype=np.int64))
            gram_df.append(frequency)
            batch_prefix = np.zeros(len(words), dtype=np.int64)
            batch_prefix[starts] = batch_ids
            table_prefix = np.full(len(words), -1, dtype=np.int64)
            table_prefix[starts] = position[batch_ids]
            offset += len(unique_codes)
        gram_df = np.concatenate(gram_df).astype(np.float64)
        idf = self.log_num_images - np.log(np.maximum(1.0, gram_df))
        return np.concatenate(entry_sentence), np.concatenate(entry_gram), np.concatenate(gram_order), idf
