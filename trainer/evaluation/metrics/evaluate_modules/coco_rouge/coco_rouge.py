"""ROUGE-L as coco-caption computes it (pycocoevalcap 1.2, beta 1.2, PTB tokenization), as an offline `evaluate`
module.

    evaluate.load("trainer/evaluation/metrics/evaluate_modules/coco_rouge")  # a local path: works with HF_EVALUATE_OFFLINE=1
"""
import evaluate

from trainer.evaluation.metrics import rouge_l
from trainer.evaluation.metrics.evaluate_support import caption_metric_info, tokenized_inputs

_KWARGS = """predictions: list of caption strings; references: list of lists of reference captions (same order).
Returns: {"ROUGE_L": mean over images}."""


class CocoRouge(evaluate.Metric):
    def _info(self):
        return caption_metric_info("ROUGE-L F-measure (beta 1.2) over the best LCS precision/recall, equal to "
                                   "pycocoevalcap 1.2.", _KWARGS)

    def _compute(self, predictions, references):
        score, _ = rouge_l(*tokenized_inputs(predictions, references))
        return {"ROUGE_L": score}
