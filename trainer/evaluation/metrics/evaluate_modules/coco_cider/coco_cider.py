"""CIDEr-D as coco-caption computes it ("CIDEr" in pycocoevalcap 1.2, PTB tokenization), as an offline `evaluate`
module. Document frequencies come from the references passed in one ``compute`` call: score the whole set at once.

    evaluate.load("trainer/evaluation/metrics/evaluate_modules/coco_cider")  # a local path: works with HF_EVALUATE_OFFLINE=1
"""
import evaluate

from trainer.evaluation.metrics import cider_d
from trainer.evaluation.metrics.evaluate_support import caption_metric_info, tokenized_inputs

_KWARGS = """predictions: list of caption strings; references: list of lists of reference captions (same order).
Returns: {"CIDEr": corpus mean, "CIDEr_per_image": list of per-image scores}."""


class CocoCider(evaluate.Metric):
    def _info(self):
        return caption_metric_info("CIDEr-D (n=4, sigma=6, x10), equal to pycocoevalcap 1.2's CIDEr.", _KWARGS)

    def _compute(self, predictions, references):
        score, per_image = cider_d(*tokenized_inputs(predictions, references))
        return {"CIDEr": score, "CIDEr_per_image": per_image.tolist()}
