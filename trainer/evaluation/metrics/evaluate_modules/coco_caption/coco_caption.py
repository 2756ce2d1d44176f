"""COCO caption metrics (BLEU-1..4, CIDEr-D, ROUGE-L, equal to pycocoevalcap 1.2) as an offline `evaluate` module.

    evaluate.load("trainer/evaluation/metrics/evaluate_modules/coco_caption")  # a local path: works with HF_EVALUATE_OFFLINE=1
    .compute(predictions=["a dog runs"], references=[["a dog is running", "a brown dog runs"]])
"""
import evaluate

from trainer.evaluation.metrics import METRIC_NAMES, score_captions
from trainer.evaluation.metrics.evaluate_support import caption_metric_info

_DESCRIPTION = "BLEU-1..4, CIDEr-D and ROUGE-L of captions, PTB-tokenized, equal to pycocoevalcap 1.2 (no Java)."
_KWARGS = """predictions: list of caption strings, one per image.
references: list of lists of reference caption strings, one list per image (same order as predictions).
Returns: {"Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "CIDEr", "ROUGE_L"}."""


class CocoCaption(evaluate.Metric):
    def _info(self):
        return caption_metric_info(_DESCRIPTION, _KWARGS)

    def _compute(self, predictions, references):
        return score_captions(dict(enumerate(predictions)), dict(enumerate(references)), METRIC_NAMES, per_image=False).metrics
