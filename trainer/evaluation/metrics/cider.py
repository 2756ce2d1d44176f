"""CIDEr-D exactly as coco-caption's ``Cider`` scorer (pycocoevalcap 1.2), vectorised over the whole corpus."""
from __future__ import annotations

import numpy as np

from trainer.evaluation.metrics.metric import CaptionMetric, MetricValues, Score
from trainer.evaluation.metrics.ngrams import count_caption_ngrams, lookup, sorted_unique


def cider_d(candidates: list[str], references: list[list[str]], max_order: int = 4,
            sigma: float = 6.0) -> tuple[float, np.ndarray]:
    """Corpus CIDEr-D and per-image scores of tokenized, space-joined captions.

    As coco-caption: tf-idf n-gram vectors with document frequencies counted over the references of this set
    (idf = log(#images) - log(max(1, df))), clipped cosine similarity per order, Gaussian length penalty on the
    difference of bigram counts, mean over orders and references, times 10. A one-image set scores 0.
    """
    if not candidates:
        raise ValueError("cider_d needs at least one image")
    layout = count_caption_ngrams(candidates, references, max_order)
    counts, num_images = layout.counts, layout.num_images
    is_candidate = counts.sentence < num_images
    ref_sentence = counts.sentence[~is_candidate] - num_images
    ref_gram = counts.gram[~is_candidate]

    # Document frequency: number of images whose references contain the n-gram.
    image_gram = sorted_unique(layout.reference_image[ref_sentence] * counts.num_grams + ref_gram)
    document_frequency = np.bincount(image_gram % counts.num_grams, minlength=counts.num_grams)
    idf = np.log(float(num_images)) - np.log(np.maximum(1.0, document_frequency.astype(np.float64)))
    weight = counts.count * idf[counts.gram]

    # Norm of each sentence's vector per order; "length" is coco-caption's bigram count (len - 1, 0 if empty).
    num_sentences = len(counts.lengths)
    norm = np.sqrt(np.bincount(counts.sentence * max_order + counts.order, weights=weight ** 2,
                               minlength=num_sentences * max_order)).reshape(num_sentences, max_order)
    bigram_count = np.maximum(counts.lengths - 1, 0)

    # Clipped dot product: sum over n-grams shared by the candidate and the reference of min(w_c, w_r) * w_r.
    candidate_keys = counts.sentence[is_candidate] * counts.num_grams + counts.gram[is_candidate]
    ref_image = layout.reference_image[ref_sentence]
    ref_keys = ref_image * counts.num_grams + ref_gram
    position, shared = lookup(candidate_keys, ref_keys)  # candidate entries are sorted by (image, gram)
    candidate_weight = weight[is_candidate][position[shared]]
    ref_weight = weight[~is_candidate][shared]
    num_refs = len(layout.reference_image)
    dot = np.bincount(ref_sentence[shared] * max_order + counts.order[~is_candidate][shared],
                      weights=np.minimum(candidate_weight, ref_weight) * ref_weight,
                      minlength=num_refs * max_order).reshape(num_refs, max_order)

    candidate_norm = norm[layout.reference_image]
    ref_norm = norm[num_images:]
    both_nonzero = (candidate_norm != 0) & (ref_norm != 0)
    similarity = np.where(both_nonzero, dot / np.where(both_nonzero, candidate_norm * ref_norm, 1.0), dot)
    delta = (bigram_count[layout.reference_image] - bigram_count[num_images:]).astype(np.float64)
    similarity *= (np.e ** (-(delta ** 2) / (2 * sigma ** 2)))[:, None]

    refs_per_image = np.bincount(layout.reference_image, minlength=num_images)
    first_ref = np.cumsum(refs_per_image) - refs_per_image  # references are image-major, so each image is a block
    scores = np.add.reduceat(similarity, first_ref, axis=0).mean(axis=1) / refs_per_image * 10.0
    return float(scores.mean()), scores


def cider_d_scores(candidates: list[str], references: list[list[str]], per_image: bool) -> MetricValues:
    """Corpus and per-image CIDEr-D (the per-image values come free: the corpus score is their mean)."""
    return {"CIDEr": cider_d(candidates, references)}


CIDER_D = CaptionMetric("cider", (Score("CIDEr", "CIDEr-D"),), cider_d_scores, report_column=40)
