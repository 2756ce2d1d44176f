"""What the offline `evaluate` modules share: their MetricInfo and their checked, PTB-tokenized inputs."""
import datasets
import evaluate

from trainer.evaluation.metrics import check_caption_inputs, tokenize_caption


def caption_metric_info(description: str, inputs_description: str) -> evaluate.MetricInfo:
    """MetricInfo for ``compute(predictions=[str], references=[[str]])``."""
    return evaluate.MetricInfo(
        description=description, citation="", inputs_description=inputs_description,
        features=datasets.Features({"predictions": datasets.Value("string"),
                                    "references": datasets.Sequence(datasets.Value("string"))}))


def tokenized_inputs(predictions: list, references: list) -> tuple[list[str], list[list[str]]]:
    """Validate the inputs (clear errors) and PTB-tokenize every caption as coco-caption does."""
    check_caption_inputs(dict(enumerate(predictions)), dict(enumerate(references)))
    return ([tokenize_caption(caption) for caption in predictions],
            [[tokenize_caption(ref) for ref in refs] for refs in references])
