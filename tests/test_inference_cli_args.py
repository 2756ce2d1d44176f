"""Decoding flags of trainer.caption and trainer.evaluate_checkpoint: out-of-range or contradicting values are
one-line errors before any work; evaluate --n-best writes the candidates and scores the best."""
import json

import pytest

from trainer import caption as caption_cli
from trainer import evaluate_checkpoint as evaluate_cli


def evaluate_args(checkpoint, data, out, *extra):
    return ["--checkpoint", str(checkpoint), "--data", str(data), "--split", "test", "--max-len", "5",
            "--num-workers", "0", "--out", str(out), *extra]


@pytest.mark.parametrize("extra, message", [
    (["--top-p", "0"], "argument --top-p: must be in (0.0, 1.0], got 0"),
    (["--temperature", "-1"], "argument --temperature: must be in (0.0, inf], got -1"),
    (["--length-penalty", "nan"], "argument --length-penalty: must be in [0.0, inf], got nan"),
    (["--min-len", "-1"], "argument --min-len: must be >= 0, got -1"),
])
def test_out_of_range_controls_are_usage_errors(tiny_checkpoint, tmp_path, capsys, extra, message):
    checkpoint, data, images = tiny_checkpoint
    for main, args in ((caption_cli.main, ["--checkpoint", str(checkpoint), str(images / "000000.jpg")]),
                       (evaluate_cli.main, evaluate_args(checkpoint, data, tmp_path / "r.json"))):
        with pytest.raises(SystemExit) as exit_info:
            main([*args, *extra])
        assert exit_info.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("extra, message", [
    (["--n-best", "4", "--beam-size", "3"], "error: --n-best=4 exceeds --beam-size=3"),
    (["--top-k", "5"], "apply to sampling only (add --sample)"),
    (["--min-len", "30"], "error: --min-len must be in [0, --max-len="),
])
def test_contradicting_controls_are_one_line_errors(tiny_checkpoint, tmp_path, extra, message):
    checkpoint, data, images = tiny_checkpoint
    for main, args in ((caption_cli.main, ["--checkpoint", str(checkpoint), str(images / "000000.jpg")]),
                       (evaluate_cli.main, evaluate_args(checkpoint, data, tmp_path / "r.json"))):
        with pytest.raises(SystemExit) as exit_info:
            main([*args, *extra])
        assert message in str(exit_info.value) and "\n" not in str(exit_info.value)
    assert not (tmp_path / "r.json").exists()


def test_evaluate_n_best_writes_ranked_candidates(tiny_checkpoint, tmp_path):
    checkpoint, data, _ = tiny_checkpoint
    out = tmp_path / "results.json"
    assert evaluate_cli.main(evaluate_args(checkpoint, data, out, "--beam-size", "3", "--n-best", "3",
                                           "--no-repeat-ngram-size", "2", "--suppress-unk")) == 0
    plain = tmp_path / "plain.json"
    assert evaluate_cli.main(evaluate_args(checkpoint, data, plain, "--beam-size", "3", "--no-repeat-ngram-size",
                                           "2", "--suppress-unk")) == 0
    rows, plain_rows = json.loads(out.read_text()), json.loads(plain.read_text())
    assert [row["caption"] for row in rows] == [row["caption"] for row in plain_rows]
    for row in rows:
        scores = [candidate["score"] for candidate in row["n_best"]]
        assert len(scores) == 3 and scores == sorted(scores, reverse=True)
        assert row["n_best"][0]["caption"] == row["caption"]
        assert len({candidate["caption"] for candidate in row["n_best"]}) == 3
