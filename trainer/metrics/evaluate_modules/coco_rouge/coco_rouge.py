"""ROUGE-L as coco-caption computes it (pycocoevalcap 1.2, beta 1.2, PTB tokenization), as an offline `evaluate`
module.

    evaluate.load("trainer/metrics/evaluate_modules/coco_rouge")  # a local path: works with HF_EVALUATE_OFFLINE=1
"""
import datasets
import evaluate

from trainer.metrics import check_caption_inputs, rouge_l, tokenize_caption

_KWARGS = """predictions: list of caption strings; references: list of lists of reference captions (same order).
Returns: {"ROUGE_L": mean over images}."""


class CocoRouge(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="ROUGE-L F-measure (beta 1.2) over the best LCS precision/recall, equal to pycocoevalcap 1.2.",
            citation="", inputs_description=_KWARGS,
            features=datasets.Features({"predictions": datasets.Value("string"),
                                        "references": datasets.Sequence(datasets.Value("string"))}))

    def _compute(self, predictions, references):
        check_caption_inputs(dict(enumerate(predictions)), dict(enumerate(references)))
        score, _ = rouge_l([tokenize_caption(caption) for caption in predictions],
                           [[tokenize_caption(ref) for ref in refs] for refs in references])
        return {"ROUGE_L": score}
