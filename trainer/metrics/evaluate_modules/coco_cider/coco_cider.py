"""CIDEr-D as coco-caption computes it ("CIDEr" in pycocoevalcap 1.2, PTB tokenization), as an offline `evaluate`
module. Document frequencies come from the references passed in one ``compute`` call: score the whole set at once.

    evaluate.load("trainer/metrics/evaluate_modules/coco_cider")  # a local path: works with HF_EVALUATE_OFFLINE=1
"""
import datasets
import evaluate

from trainer.metrics import check_caption_inputs, cider_d, tokenize_caption

_KWARGS = """predictions: list of caption strings; references: list of lists of reference captions (same order).
Returns: {"CIDEr": corpus mean, "CIDEr_per_image": list of per-image scores}."""


class CocoCider(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="CIDEr-D (n=4, sigma=6, x10), equal to pycocoevalcap 1.2's CIDEr.", citation="",
            inputs_description=_KWARGS,
            features=datasets.Features({"predictions": datasets.Value("string"),
                                        "references": datasets.Sequence(datasets.Value("string"))}))

    def _compute(self, predictions, references):
        check_caption_inputs(dict(enumerate(predictions)), dict(enumerate(references)))
        score, per_image = cider_d([tokenize_caption(caption) for caption in predictions],
                                   [[tokenize_caption(ref) for ref in refs] for refs in references])
        return {"CIDEr": score, "CIDEr_per_image": per_image.tolist()}
