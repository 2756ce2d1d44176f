"""Model cards: best/ carries a README.md with the model config, the data (fingerprint, split sizes), the last
validation metrics and how to load it; the card's facts read back."""
import json

import pytest
from test_trainer_loop import make_loop

from data_pipelines.manifest import dataset_fingerprint, read_manifest
from trainer.inference.model_card import read_card_data, write_model_card


def test_card_states_model_data_metrics_and_loading(tiny_checkpoint, tmp_path):
    checkpoint, data, _ = tiny_checkpoint
    metrics = {"Bleu_4": 0.125, "CIDEr": 0.5}
    card = write_model_card(checkpoint, {"data": {"root": str(data), "image_size": 48}, "eval": {"split": "val"}},
                            metrics, step=7)
    text = card.read_text()
    assert card == checkpoint / "README.md"
    assert dataset_fingerprint(data) in text and "| CIDEr | 0.5000 |" in text and "step 7" in text
    for split, entry in read_manifest(data)["splits"].items():
        assert f"| {split} | {entry['images']} |" in text
    assert "CaptionPipeline.from_checkpoint" in text and "trainer.export" in text
    facts = read_card_data(checkpoint)
    assert facts["model"] == json.loads((checkpoint / "config.json").read_text())
    assert facts["validation"] == {"split": "val", "step": 7, "metrics": metrics}
    card.unlink()  # the session's shared checkpoint stays as other tests expect it


@pytest.mark.slow
def test_training_writes_a_card_into_best(tiny_prepared, tmp_path):
    loop = make_loop(tiny_prepared, tmp_path, "train.max_steps=2", "eval.every_steps=2", "checkpoint.every_steps=2")
    loop.run()
    facts = read_card_data(tmp_path / "best")
    assert facts["validation"]["step"] == 2 and set(facts["validation"]["metrics"]) >= {"Bleu_4", "CIDEr"}
    assert facts["data"]["fingerprint"] == dataset_fingerprint(tiny_prepared)
