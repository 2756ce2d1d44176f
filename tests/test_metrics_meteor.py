"""METEOR through Java equals pycocoevalcap 1.2's Meteor on the same input; without Java it is absent, not an error."""
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_metrics_coco import PREDICTIONS, REFERENCES

from trainer.evaluation.metrics import compute_caption_metrics, meteor, score_captions, tokenize_caption

REPO = Path(__file__).resolve().parents[1]
# Skipped only off CI (a developer machine without Java); CI machines have Java 17, so there the tests must run.
needs_java = pytest.mark.skipif(meteor.unavailable_reason() is not None and not os.environ.get("CI"),
                                reason=f"METEOR cannot run here: {meteor.unavailable_reason()}")


def meteor_only(predictions, references) -> dict:
    return score_captions(predictions, references, ["METEOR"], per_image=False).metrics


def tokenized(predictions, references):
    ids = list(predictions)
    return ([tokenize_caption(predictions[i]) for i in ids], [[tokenize_caption(r) for r in references[i]] for i in ids])


@pytest.mark.slow
@needs_java
def test_meteor_equals_pycocoevalcap():
    from pycocoevalcap.meteor.meteor import Meteor

    candidates, references = tokenized(PREDICTIONS, REFERENCES)
    expected, expected_per_image = Meteor().compute_score(dict(enumerate(references)),
                                                          {i: [c] for i, c in enumerate(candidates)})
    corpus, per_image = meteor.meteor_scores(candidates, references)
    assert corpus == pytest.approx(expected, abs=1e-6)
    np.testing.assert_allclose(per_image, expected_per_image, atol=1e-6)
    assert 0.0 < corpus < 1.0 and per_image[list(PREDICTIONS).index("exact")] > 0.9  # not a constant
    assert meteor_only(PREDICTIONS, REFERENCES)["METEOR"] == pytest.approx(expected, abs=1e-6)
    scores = score_captions(PREDICTIONS, REFERENCES)  # the shared process answers again, same numbers
    assert scores.metrics["METEOR"] == corpus
    assert [scores.per_image[i]["METEOR"] for i in PREDICTIONS] == pytest.approx(list(per_image), abs=1e-12)


def test_without_java_meteor_is_absent_with_one_logged_line(monkeypatch, caplog):
    monkeypatch.setattr(meteor.shutil, "which", lambda name: None)
    monkeypatch.setattr(meteor, "_logged_reasons", set())
    with caplog.at_level(logging.WARNING, logger=meteor.__name__):
        assert meteor_only(PREDICTIONS, REFERENCES) == {}
        scores = score_captions(PREDICTIONS, REFERENCES)
    assert scores.metrics == compute_caption_metrics(PREDICTIONS, REFERENCES)  # the rest is untouched
    assert all("METEOR" not in values for values in scores.per_image.values())
    assert [record.getMessage() for record in caplog.records] == \
        ["METEOR skipped: no `java` on PATH (install a Java runtime to get METEOR)"]


def test_a_path_without_java_evaluates_without_meteor(tmp_path):
    """A real process whose PATH has no java: metrics print, METEOR is missing, one line on stderr."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    code = ("from test_metrics_coco import PREDICTIONS, REFERENCES\n"
            "from trainer.evaluation.metrics import score_captions\n"
            "print(sorted(score_captions(PREDICTIONS, REFERENCES).metrics))\n"
            "print(sorted(score_captions(PREDICTIONS, REFERENCES).metrics))\n")
    env = {**os.environ, "PATH": str(bin_dir),
           "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests"), os.environ.get("PYTHONPATH", "")])}
    completed = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    names = str(sorted(["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "CIDEr", "ROUGE_L"]))
    assert completed.stdout.splitlines() == [names, names]
    assert completed.stderr.count("METEOR skipped: no `java` on PATH") == 1


def test_missing_jar_is_named(monkeypatch, tmp_path):
    monkeypatch.setattr(meteor.shutil, "which", lambda name: "/usr/bin/java")
    monkeypatch.setenv(meteor.JAR_ENV, str(tmp_path / "nowhere.jar"))
    assert meteor.find_meteor_jar() is None
    assert meteor.unavailable_reason() == f"{tmp_path / 'nowhere.jar'} is not a file"


@needs_java
def test_a_broken_jar_is_logged_not_raised(monkeypatch, tmp_path, caplog):
    broken = tmp_path / "meteor-1.5.jar"
    broken.write_bytes(b"not a jar")
    monkeypatch.setenv(meteor.JAR_ENV, str(broken))
    monkeypatch.setattr(meteor, "_logged_reasons", set())
    with caplog.at_level(logging.WARNING, logger=meteor.__name__):
        assert meteor_only(PREDICTIONS, REFERENCES) == {}
    assert len(caplog.records) == 1 and "METEOR process failed" in caplog.records[0].getMessage()
    assert broken not in meteor._shared  # a failed process is not reused
