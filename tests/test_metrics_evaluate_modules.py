"""The `evaluate` modules in the repo load by path with the network off and return our metrics."""
import socket
from pathlib import Path

import evaluate
import pytest

from trainer.evaluation.metrics import compute_caption_metrics

MODULES = Path(__file__).resolve().parents[1] / "trainer" / "evaluation" / "metrics" / "evaluate_modules"
PREDICTIONS = ["A dog runs on the grass.", "a cat", ""]
REFERENCES = [["A dog is running on grass.", "A brown dog runs."], ["A cat sits.", "The cat on a mat."],
              ["A red bus.", "A bus parked."]]


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network disabled in this test")
    monkeypatch.setenv("HF_EVALUATE_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.mark.parametrize("name, keys", [
    ("coco_caption", ["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "CIDEr", "ROUGE_L"]),
    ("coco_bleu", ["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4"]),
    ("coco_cider", ["CIDEr"]),
    ("coco_rouge", ["ROUGE_L"]),
])
def test_module_loads_offline_and_matches(no_network, name, keys):
    metric = evaluate.load(str(MODULES / name))
    result = metric.compute(predictions=PREDICTIONS, references=REFERENCES)
    expected = compute_caption_metrics(dict(enumerate(PREDICTIONS)), dict(enumerate(REFERENCES)))
    for key in keys:
        assert result[key] == pytest.approx(expected[key], abs=1e-12)


def test_cider_module_accumulates_batches_before_scoring(no_network):
    metric = evaluate.load(str(MODULES / "coco_cider"))
    for prediction, refs in zip(PREDICTIONS, REFERENCES):
        metric.add_batch(predictions=[prediction], references=[refs])
    result = metric.compute()
    assert len(result["CIDEr_per_image"]) == len(PREDICTIONS)
    assert result["CIDEr"] == pytest.approx(
        compute_caption_metrics(dict(enumerate(PREDICTIONS)), dict(enumerate(REFERENCES)))["CIDEr"], abs=1e-12)
