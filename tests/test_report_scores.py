"""Per-image scores (results JSON, gallery) are coco-caption's per-image values; corpus values are unchanged."""
import numpy as np
import pytest
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge
from test_metrics_coco import PREDICTIONS, REFERENCES

from trainer.evaluation.metrics import METRIC_NAMES, compute_caption_metrics, score_captions, tokenize_caption


def test_per_image_scores_equal_pycocoevalcap_per_image_lists():
    ids = list(PREDICTIONS)
    res = {i: [tokenize_caption(PREDICTIONS[i])] for i in ids}
    gts = {i: [tokenize_caption(ref) for ref in REFERENCES[i]] for i in ids}
    _, bleu = Bleu(4).compute_score(gts, res, verbose=0)
    _, cider = Cider().compute_score(gts, res)  # document frequencies of the whole set
    _, rouge = Rouge().compute_score(gts, res)
    scores = score_captions(PREDICTIONS, REFERENCES, METRIC_NAMES)
    for order in range(4):
        np.testing.assert_allclose([scores.per_image[i][f"Bleu_{order + 1}"] for i in ids], bleu[order], atol=1e-12)
    np.testing.assert_allclose([scores.per_image[i]["CIDEr"] for i in ids], cider, atol=1e-12)
    np.testing.assert_allclose([scores.per_image[i]["ROUGE_L"] for i in ids], rouge, atol=1e-12)
    assert scores.metrics == compute_caption_metrics(PREDICTIONS, REFERENCES)
    assert set(scores.metrics) == set(METRIC_NAMES)
    assert np.mean([scores.per_image[i]["CIDEr"] for i in ids]) == pytest.approx(scores.metrics["CIDEr"], abs=1e-12)
    assert scores.per_image["exact"]["Bleu_4"] > 0.99 and scores.per_image["empty"]["CIDEr"] == 0.0
