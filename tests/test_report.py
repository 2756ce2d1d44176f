"""`python -m trainer.evaluate_checkpoint --report DIR` on the tiny checkpoint: the files of the static report, per-image scores in
the results JSON, learning curves from the run's train_log.jsonl, and the page's pieces on their own."""
import json
import re
import shutil
from pathlib import Path

import pytest
from conftest import TINY_TEST_IMAGES as TEST_IMAGES
from conftest import build_tiny_checkpoint
from PIL import Image

from trainer import evaluate_checkpoint as evaluate_cli
from trainer.evaluation.coco_results import results_image_id
from trainer.evaluation.metrics import METRIC_NAMES, OPTIONAL_METRIC_NAMES
from trainer.evaluation.report.attention_strip import PANEL_SIDE
from trainer.evaluation.report.curves import plot_learning_curves
from trainer.evaluation.report.page import render_page
from trainer.evaluation.report.summary import summary_table_html
from trainer.evaluation.report.train_log import find_train_log, read_train_log

LOG_STEPS = 40


def write_train_log(path: Path) -> None:
    """A train_log.jsonl as trainer/train.py writes it (train scalars every step, validation every 10 steps), with a
    resumed run that re-logs steps 31..40."""
    lines = []
    for step in list(range(1, LOG_STEPS + 1)) + list(range(31, LOG_STEPS + 1)):
        lines.append({"step": step, "wall_time": 1000.0 + 3 * step, "train/loss": 5 / step ** 0.5,
                      "train/ce": 4 / step ** 0.4, "train/attention_reg": 1.0, "train/lr": 1e-3})
        if step % 10 == 0:
            lines.append({"step": step, "wall_time": 1001.0 + 3 * step, "val/CIDEr": 0.1 * step ** 0.5})
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


def evaluated_report(tmp_path_factory) -> tuple[Path, Path]:
    """(DIR/index.html, results JSON) of one evaluate --report run on the tiny checkpoint, laid out as a training
    run (RUN/best + RUN/train_log.jsonl). Built once per test session."""
    checkpoint, data, _ = build_tiny_checkpoint(tmp_path_factory)
    root = tmp_path_factory.getbasetemp() / "tiny_report"
    page, results = root / "report" / "index.html", root / "results.json"
    if not page.is_file():
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(checkpoint, root / "run" / "best")
        write_train_log(root / "run" / "train_log.jsonl")
        assert evaluate_cli.main(["--checkpoint", str(root / "run" / "best"), "--data", str(data), "--split", "test",
                                  "--beam-size", "2", "--num-workers", "0", "--out", str(results),
                                  "--report", str(root / "report")]) == 0
    return page, results


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    return evaluated_report(tmp_path_factory)


def page_json(html: str, element_id: str):
    match = re.search(rf'<script type="application/json" id="{element_id}">(.*?)</script>', html, re.S)
    return json.loads(match.group(1))


def test_results_rows_carry_per_image_scores(report):
    _, results_path = report
    rows = json.loads(results_path.read_text())
    assert len(rows) == TEST_IMAGES
    for row in rows:
        assert set(row) == {"image_id", "caption", "scores"}
        assert set(METRIC_NAMES) <= set(row["scores"]) <= set(METRIC_NAMES) | set(OPTIONAL_METRIC_NAMES)
        assert all(0.0 <= value for value in row["scores"].values())


def test_report_page_images_and_curves(report):
    page, results_path = report
    html = page.read_text(encoding="utf-8")
    rows = {row["image_id"]: row for row in json.loads(results_path.read_text())}
    records = page_json(html, "gallery-data")
    assert len(records) == len(rows) == TEST_IMAGES
    for record in records:
        row = rows[results_image_id(record["id"])]  # results use int ids where the dataset's are digits
        assert record["caption"] == row["caption"] and record["refs"]
        assert record["scores"] == {name: round(value, 4) for name, value in row["scores"].items()}
        with Image.open(page.parent / record["image"]) as image:
            assert image.size[0] == image.size[1] > 0
        assert len(record["words"]) == len(row["caption"].split()) > 0
        with Image.open(page.parent / record["strip"]) as strip:  # the image, then one panel per word
            assert strip.size == (PANEL_SIDE * (len(record["words"]) + 1), PANEL_SIDE)
    assert page_json(html, "gallery-settings")["scores"][:2] == ["CIDEr", "Bleu_4"]
    with Image.open(page.parent / "curves.png") as curves:
        assert curves.format == "PNG" and curves.size[0] > curves.size[1] > 400  # two rows: steps, wall time
    assert '<img class="curves" src="curves.png"' in html
    assert html.count("<tr") == 4  # header, model, blind, human
    # Self-contained: no address outside the report folder.
    assert not re.search(r"(src|href)=\"(https?:)?//", html) and "http://" not in html and "https://" not in html


def test_train_log_is_found_from_the_checkpoint_and_merged_by_step(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints" / "step_00000040").mkdir(parents=True)
    write_train_log(run / "train_log.jsonl")
    assert find_train_log(run / "checkpoints" / "step_00000040") == run / "train_log.jsonl"
    assert find_train_log(tmp_path / "elsewhere") is None
    records = read_train_log(run / "train_log.jsonl")
    assert [record["step"] for record in records] == list(range(1, LOG_STEPS + 1))
    assert "val/CIDEr" in records[9] and "train/loss" in records[9]
    (run / "train_log.jsonl").write_text('{"step": 1}\nnot json\n')
    with pytest.raises(ValueError, match=r"train_log.jsonl: line 2, column \d+: invalid JSON"):
        read_train_log(run / "train_log.jsonl")


def test_curves_without_wall_time_have_one_row_and_empty_logs_none(tmp_path):
    records = [{"step": step, "train/loss": 1.0 / step, "train/ce": 0.5 / step} for step in range(1, 20)]
    with_time = [{**record, "wall_time": 100.0 + record["step"]} for record in records]
    with Image.open(plot_learning_curves(records, tmp_path / "steps.png")) as one_row, \
            Image.open(plot_learning_curves(with_time, tmp_path / "both.png")) as two_rows:
        assert one_row.size[0] == two_rows.size[0] and two_rows.size[1] > 1.8 * one_row.size[1]
    assert plot_learning_curves([{"step": 1, "train/lr": 0.1}], tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()


def test_summary_table_marks_missing_metrics_and_page_escapes_data():
    model = {name: 0.5 for name in METRIC_NAMES} | {"METEOR": 0.25}
    table = summary_table_html([("model <b>", model), ("blind", {name: 0.1 for name in METRIC_NAMES})])
    assert "METEOR" in table and "0.250" in table and "class=missing" in table and "model &lt;b&gt;" in table
    assert "METEOR" not in summary_table_html([("blind", {name: 0.1 for name in METRIC_NAMES})])
    hostile = "</script><script>alert(1)</script> @@CSS@@"
    html = render_page("t <i>", "s", table, "", [{"id": "1", "caption": hostile, "refs": [hostile], "scores": {},
                                                  "words": [], "image": None, "strip": None}],
                       {"panel": 96, "scores": []})
    assert "<script>alert(1)" not in html and "t &lt;i&gt;" in html
    assert page_json(html, "gallery-data")[0]["caption"] == hostile  # text inserted is never scanned for markers
