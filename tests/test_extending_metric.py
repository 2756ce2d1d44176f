"""The worked example of docs/extending.md#a-metric, run as written: once registered, the toy metric is in
validation's results (train log and TensorBoard), in `evaluate_checkpoint`'s corpus and per-image output, and in the
report's summary table and gallery; metric names in the config and on the command line are checked when read."""
import json
import re
from pathlib import Path

import pytest
from conftest import TINY_IMAGE_SIZE, TINY_TEST_IMAGES
from test_report import page_json

from trainer import evaluate_checkpoint as evaluate_cli
from trainer.config.schema import load_config
from trainer.evaluation.coco_results import results_image_id
from trainer.evaluation.metrics import METRICS, CaptionMetric, Score, register_metric, score_captions, score_names, tokenize_caption
from trainer.evaluation.report.train_log import read_train_log
from trainer.train import main as train_main

REPO = Path(__file__).resolve().parents[1]
TOY = "Words"


def docs_example() -> str:
    """The first python block of the section "A metric" of docs/extending.md."""
    text = (REPO / "docs" / "extending.md").read_text()
    section = text.split("\n## A metric\n", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.fixture
def toy_metric():
    """The docs' metric, registered for one test and removed after it."""
    namespace = {}
    exec(compile(docs_example(), "docs/extending.md", "exec"), namespace)
    try:
        yield namespace["CAPTION_WORDS"]
    finally:
        METRICS.pop("caption_words", None)


def words(caption: str) -> float:
    return float(len(tokenize_caption(caption).split()))


def test_the_toy_metric_is_scored_by_the_one_scorer(toy_metric):
    predictions = {"a": "A dog, running.", "b": "two cats"}
    references = {"a": ["a dog runs"], "b": ["two cats sit", "cats"]}
    scores = score_captions(predictions, references)
    assert score_names()[-1] == TOY and list(scores.metrics)[-1] == TOY  # after the built-in ones
    assert scores.metrics[TOY] == 2.5 and scores.per_image["a"][TOY] == 3.0  # "a dog running": punctuation dropped
    assert list(score_captions(predictions, references, ["CIDEr", TOY], per_image=False).metrics) == ["CIDEr", TOY]


@pytest.mark.slow
def test_validation_logs_the_toy_metric(toy_metric, tiny_prepared, tmp_path):
    """A two-step training run in this process: its validation's val/Words goes to the train log and TensorBoard."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    output = tmp_path / "run"
    assert train_main([f"data.root={tiny_prepared}", f"output_dir={output}", "model.encoder_weights=none",
                       "model.feature_dim=16", "model.embed_dim=16", "model.attention_dim=16", "model.hidden_dim=32",
                       f"data.image_size={TINY_IMAGE_SIZE}", "data.num_workers=0", "train.max_steps=2",
                       "train.global_batch_size=4", "eval.batch_size=8", "eval.max_len=8", "eval.every_steps=0",
                       "checkpoint.every_steps=0", "logging.every_steps=1"]) == 0
    validations = [record for record in read_train_log(output / "train_log.jsonl") if "val/CIDEr" in record]
    assert validations and {f"val/{name}" for name in ("Bleu_4", "CIDEr", "ROUGE_L", TOY)} <= set(validations[-1])
    logged = validations[-1][f"val/{TOY}"]
    assert logged == int(logged) and logged >= 1  # one val image: its caption's word count (PTB tokens)
    events = EventAccumulator(str(output / "tensorboard")).Reload()
    assert [event.value for event in events.Scalars(f"val/{TOY}")] == pytest.approx([logged])
    assert {f"val/{name}" for name in ("Bleu_4", "CIDEr", "ROUGE_L")} <= set(events.Tags()["scalars"])


def test_evaluation_and_report_show_the_toy_metric(toy_metric, tiny_checkpoint, tmp_path, capsys):
    checkpoint, data, _ = tiny_checkpoint
    results, report = tmp_path / "results.json", tmp_path / "report"
    assert evaluate_cli.main(["--checkpoint", str(checkpoint), "--data", str(data), "--split", "test",
                              "--beam-size", "2", "--num-workers", "0", "--out", str(results),
                              "--report", str(report)]) == 0
    corpus = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    rows = json.loads(results.read_text())
    assert len(rows) == TINY_TEST_IMAGES and list(corpus)[-1] == TOY
    assert all(row["scores"][TOY] == words(row["caption"]) for row in rows)
    assert corpus[TOY] == pytest.approx(sum(row["scores"][TOY] for row in rows) / len(rows))

    html = (report / "index.html").read_text(encoding="utf-8")
    head = re.search(r"<thead>(.*?)</thead>", html, re.S).group(1)
    assert re.findall(r"<th>([^<]*)</th>", head)[-2:] == ["CIDEr-D", "words"]  # after the built-in columns
    body_rows = re.findall(r"<tr[^>]*>(.*?)</tr>", re.search(r"<tbody>(.*?)</tbody>", html, re.S).group(1))
    assert len(body_rows) == 3  # the model, the blind and the human rows: each has the toy's value
    assert all(re.findall(r"<td[^>]*>([^<]*)</td>", row)[-1] != "&ndash;" for row in body_rows)
    settings = page_json(html, "gallery-settings")
    assert settings["scores"][0] == "CIDEr" and TOY in settings["scores"] and settings["labels"][TOY] == "words"
    by_id = {row["image_id"]: row for row in rows}
    for record in page_json(html, "gallery-data"):
        assert record["scores"][TOY] == by_id[results_image_id(record["id"])]["scores"][TOY]


def test_metrics_flag_picks_scores_and_refuses_unknown_names(toy_metric, tiny_checkpoint, tmp_path, capsys):
    checkpoint, data, _ = tiny_checkpoint
    common = ["--checkpoint", str(checkpoint), "--data", str(data), "--split", "test", "--beam-size", "1",
              "--num-workers", "0", "--out", str(tmp_path / "results.json")]
    assert evaluate_cli.main([*common, "--metrics", TOY, "CIDEr"]) == 0
    assert list(json.loads(capsys.readouterr().out.strip().splitlines()[-1])) == ["CIDEr", TOY]
    with pytest.raises(SystemExit) as stop:
        evaluate_cli.main([*common, "--metrics", "CIDEr", "Wrods"])
    assert str(stop.value) == ("error: --metrics: unknown metric 'Wrods'; choose from Bleu_1, Bleu_2, Bleu_3, Bleu_4, "
                               "CIDEr, ROUGE_L, METEOR, Words")


def test_eval_metrics_are_checked_when_the_config_is_read(toy_metric, tmp_path):
    common = [f"data.root={tmp_path}", f"output_dir={tmp_path / 'run'}"]
    assert load_config(None, [*common, f"eval.metrics=[CIDEr,{TOY}]"]).eval.metrics == ["CIDEr", TOY]
    with pytest.raises(ValueError, match=r"^config key 'eval.metrics': unknown metric 'Wrods'; choose from Bleu_1, "
                                         r"Bleu_2, Bleu_3, Bleu_4, CIDEr, ROUGE_L, METEOR, Words$"):
        load_config(None, [*common, "eval.metrics=[CIDEr,Wrods]"])
    with pytest.raises(ValueError, match=r"eval.metrics.*must include 'CIDEr': best/ and eval.patience follow it"):
        load_config(None, [*common, f"eval.metrics=[{TOY}]"])
    METRICS.pop("caption_words")
    with pytest.raises(ValueError, match=r"unknown metric 'Words'; choose from .*, METEOR$"):
        load_config(None, [*common, f"eval.metrics=[CIDEr,{TOY}]"])


def test_register_metric_refuses_clashing_or_unusable_names_and_the_scorer_wrong_values():
    def constant(candidates, references, per_image):
        return {"Other": (1.0, None)}

    with pytest.raises(ValueError, match="score name 'CIDEr' is already given by metric 'cider'"):
        register_metric(CaptionMetric("my_cider", (Score("CIDEr", "mine"),), constant))
    with pytest.raises(ValueError, match="score name 'val/x' is not a plain word"):
        register_metric(CaptionMetric("slashed", (Score("val/x", "x"),), constant))
    with pytest.raises(ValueError, match="a metric named 'bleu' is already registered"):
        register_metric(CaptionMetric("bleu", (Score("Bleu_9", "x"),), constant))
    assert "my_cider" not in METRICS and "slashed" not in METRICS
    register_metric(CaptionMetric("liar", (Score("Honest", "honest"),), constant))
    try:
        with pytest.raises(ValueError, match=r"metric 'liar' returned scores \['Other'\], expected \['Honest'\]"):
            score_captions({"a": "a dog"}, {"a": ["a dog"]})
    finally:
        METRICS.pop("liar")
