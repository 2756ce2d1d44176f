"""Corpus BLEU-1..4 as coco-caption computes it (pycocoevalcap 1.2, PTB tokenization), as an offline `evaluate` module.

    evaluate.load("trainer/evaluation/metrics/evaluate_modules/coco_bleu")  # a local path: works with HF_EVALUATE_OFFLINE=1
"""
import evaluate

from trainer.evaluation.metrics import corpus_bleu
from trainer.evaluation.metrics.evaluate_support import caption_metric_info, tokenized_inputs

_KWARGS = """predictions: list of caption strings; references: list of lists of reference captions (same order).
Returns: {"Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4"}."""


class CocoBleu(evaluate.Metric):
    def _info(self):
        return caption_metric_info("Corpus BLEU-1..4, 'closest' reference length, equal to pycocoevalcap 1.2.", _KWARGS)

    def _compute(self, predictions, references):
        scores = corpus_bleu(*tokenized_inputs(predictions, references))
        return {f"Bleu_{order + 1}": score for order, score in enumerate(scores)}
