"""trainer.export: ONNX graphs onnxruntime runs, the numpy search over them equals the eager search for a batch with
each control it honours and refuses the others by name, --verify prints one JSON line, the export carries a model card,
and an --out holding other files is refused."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import REPO
from test_modeling_generate import BOS, EOS, PAD, sharpened_model

from modeling.beam_search import project_for_decoding
from trainer import export as export_cli
from trainer.inference.onnx_search import OnnxCaptioner


class EagerGraphs(OnnxCaptioner):
    """The numpy search of OnnxCaptioner over the eager decoder (no ONNX): checks the search itself, fast."""

    def __init__(self, model):
        self.model, self.bos_id, self.eos_id, self.pad_id, self.steps = model, BOS, EOS, PAD, 0

    def encode(self, features):
        with torch.no_grad():
            encoded = self.model.encode(torch.from_numpy(features))
            hidden, cell = self.model.decoder.init_state(encoded)
            return encoded.numpy(), project_for_decoding(self.model.decoder, encoded).numpy(), hidden.numpy(), \
                cell.numpy()

    def log_probs(self, words, hidden, cell, features, projected):
        self.steps += 1
        with torch.no_grad():
            logits, (hidden, cell), alpha = self.model.decoder.step(
                torch.from_numpy(words), (torch.from_numpy(hidden), torch.from_numpy(cell)),
                torch.from_numpy(features), torch.from_numpy(projected))
        log_probs = torch.log_softmax(logits.float(), dim=-1).numpy()
        log_probs[:, [BOS, PAD]] = -np.inf
        return log_probs, hidden.numpy(), cell.numpy(), alpha.numpy()


CONTROLS = [dict(beam_size=1), dict(beam_size=3), dict(beam_size=4, length_penalty=0.7),
            dict(beam_size=1, min_len=4), dict(beam_size=3, min_len=4), dict(beam_size=1, no_repeat_ngram_size=2),
            dict(beam_size=4, no_repeat_ngram_size=2), dict(beam_size=3, no_repeat_ngram_size=1),
            dict(beam_size=3, suppress_ids=(3, 5)), dict(beam_size=4, n_best=3),
            dict(beam_size=4, length_penalty=0.7, min_len=3, no_repeat_ngram_size=2, suppress_ids=(3,), n_best=3,
                 seed=7)]


@pytest.mark.parametrize("controls", CONTROLS, ids=lambda controls: ",".join(f"{k}={v}" for k, v in controls.items()))
def test_numpy_search_equals_the_eager_search_with_each_control(controls):
    model = sharpened_model(vocab_size=12)
    features = torch.randn(8, 2048, 2, 2, generator=torch.Generator().manual_seed(3))
    eager = model.generate(features, max_len=12, **controls)
    graphs = EagerGraphs(model)
    searched = graphs.caption(features.numpy(), max_len=12, **controls)
    assert len(searched) == len(eager.tokens) == 8 * controls.get("n_best", 1)
    for row, (tokens, score) in zip(eager.tokens.tolist(), searched):
        assert tokens == [token for token in row if token != PAD]
    np.testing.assert_allclose([score for _, score in searched], eager.scores.numpy(), rtol=1e-5, atol=1e-5)
    assert graphs.steps <= 12  # the 8 images are searched together: one decoder call per step


def test_a_control_the_onnx_captioner_does_not_do_is_refused_by_name():
    graphs = EagerGraphs(sharpened_model(vocab_size=12))
    features = np.zeros((2, 2048, 2, 2), dtype=np.float32)
    with pytest.raises(ValueError, match=r"^decoding control 'sample' is not supported by the ONNX captioner") as error:
        graphs.caption(features, sample=True, top_k=3)
    assert "\n" not in str(error.value) and graphs.steps == 0


def test_export_refuses_a_verify_control_the_onnx_captioner_does_not_do(tiny_checkpoint, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        export_cli.main(["--checkpoint", str(tiny_checkpoint[0]), "--out", str(tmp_path / "onnx"), "--sample"])
    assert exit_info.value.code == 2 and not (tmp_path / "onnx").exists()
    assert "error: decoding control '--sample' is not supported by the ONNX captioner" in capsys.readouterr().err


def test_an_out_holding_other_files_is_refused(tiny_checkpoint, tmp_path):
    checkpoint = tiny_checkpoint[0]
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit) as exit_info:
        export_cli.main(["--checkpoint", str(checkpoint), "--out", str(tmp_path)])
    assert "holds files that are not an export" in str(exit_info.value)
    with pytest.raises(SystemExit) as exit_info:
        export_cli.main(["--checkpoint", str(checkpoint), "--out", str(checkpoint / "onnx")])
    assert "is inside --checkpoint" in str(exit_info.value)
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.slow
def test_export_runs_in_onnxruntime_and_verifies(tiny_checkpoint, tmp_path):
    checkpoint, _, images = tiny_checkpoint
    out = tmp_path / "onnx"
    paths = [str(images / f"00000{i}.jpg") for i in range(3)]
    completed = subprocess.run([sys.executable, "-m", "trainer.export", "--checkpoint", str(checkpoint), "--out",
                                str(out), "--verify", *paths, "--beam-size", "3", "--max-len", "8", "--n-best", "2",
                                "--min-len", "2", "--no-repeat-ngram-size", "2", "--suppress-unk"],
                               cwd=REPO, capture_output=True, text=True, timeout=900)
    assert completed.returncode == 0, completed.stderr[-2000:]
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert report["captions_identical"] and report["onnx_captions"] == report["eager_captions"]
    assert len(report["onnx_captions"]) == 2 * len(paths)
    assert report["max_feature_diff"] < 1e-3 and report["max_log_prob_diff"] < 1e-3
    assert "## How to load" in (out / "README.md").read_text() and json.loads((out / "export.json").read_text())
    # the search runs with onnxruntime and numpy alone: torch is never imported
    script = ("import sys, numpy as np; from trainer.inference.onnx_search import OnnxCaptioner; "
              f"c = OnnxCaptioner({str(out)!r}); r = c.caption(np.zeros((2, 3, 48, 48), np.float32), max_len=8); "
              "print(len(r), 'torch' in sys.modules)")
    numpy_only = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert numpy_only.stdout.split() == ["2", "False"], numpy_only.stderr[-2000:]
