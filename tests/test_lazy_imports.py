"""A training machine needs only the core packages: with `datasets`, `evaluate` and `pycocoevalcap` unimportable,
the trainer, the data tools and the evaluate/caption CLIs import, and a training run goes start to finish; only
`prepare hf` needs `datasets`, and it says how to install it."""
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OPTIONAL = ("datasets", "evaluate", "pycocoevalcap")
# Makes the optional packages unimportable in this interpreter, as if they were not installed.
BLOCK = f"""
import importlib.abc, sys
class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {OPTIONAL!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked by the test)", name=name)
sys.meta_path.insert(0, NotInstalled())
"""


def run_without_optional_packages(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK + code, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=600)


def test_training_runs_without_the_optional_packages(tiny_prepared, tmp_path):
    code = f"""
import runpy, sys
import data_pipelines.features, data_pipelines.prepare, trainer.caption, trainer.evaluate_checkpoint, trainer.scst.loop
from trainer.train import main
overrides, sys.argv = sys.argv[1:], ["trainer/train.py", "--help"]
try:
    runpy.run_path("trainer/train.py", run_name="__main__")
except SystemExit as stop:
    assert stop.code in (0, None), stop.code
code = main(overrides)
assert not [name for name in sys.modules if name.partition(".")[0] in {OPTIONAL!r}]
sys.exit(code)
"""
    completed = run_without_optional_packages(
        code, f"data.root={tiny_prepared}", f"output_dir={tmp_path / 'run'}", "model.encoder_weights=none",
        "model.feature_dim=16", "model.embed_dim=16", "model.attention_dim=16", "model.hidden_dim=32",
        "data.image_size=48", "data.num_workers=0", "train.global_batch_size=2", "train.max_steps=2",
        "eval.batch_size=4", "eval.max_len=4", "eval.beam_size=1")
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "usage: train.py" in completed.stdout
    assert (tmp_path / "run" / "checkpoints" / "step_00000002" / "trainer_state.json").is_file()


def test_prepare_hf_without_datasets_says_how_to_install_it(tmp_path):
    dataset = tmp_path / "saved"
    dataset.mkdir()
    (dataset / "dataset_info.json").write_text("{}")
    code = "import sys; from data_pipelines.prepare import main; main(sys.argv[1:])"
    completed = run_without_optional_packages(code, "hf", "--dataset", str(dataset), "--out", str(tmp_path / "out"))
    assert completed.returncode == 1
    assert "prepare hf needs the Hugging Face `datasets` package" in completed.stderr
    assert "pip install 'showattend[hf]'" in completed.stderr and "Traceback" not in completed.stderr
    assert not (tmp_path / "out").exists()
