"""Corpus BLEU-1..4 as coco-caption computes it (pycocoevalcap 1.2, PTB tokenization), as an offline `evaluate` module.

    evaluate.load("trainer/metrics/evaluate_modules/coco_bleu")  # a local path: works with HF_EVALUATE_OFFLINE=1
"""
import datasets
import evaluate

from trainer.metrics import check_caption_inputs, corpus_bleu, tokenize_caption

_KWARGS = """predictions: list of caption strings; references: list of lists of reference captions (same order).
Returns: {"Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4"}."""


class CocoBleu(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="Corpus BLEU-1..4, 'closest' reference length, equal to pycocoevalcap 1.2.", citation="",
            inputs_description=_KWARGS,
            features=datasets.Features({"predictions": datasets.Value("string"),
                                        "references": datasets.Sequence(datasets.Value("string"))}))

    def _compute(self, predictions, references):
        check_caption_inputs(dict(enumerate(predictions)), dict(enumerate(references)))
        scores = corpus_bleu([tokenize_caption(caption) for caption in predictions],
                             [[tokenize_caption(ref) for ref in refs] for refs in references])
        return {f"Bleu_{order + 1}": score for order, score in enumerate(scores)}
