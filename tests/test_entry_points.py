"""Entry points: `trainer/train.py` run as a script imports the project's packages, not its own folder's files, and
every `[project.scripts]` command names an existing `main`."""
import importlib
import json
import subprocess
import sys
from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parents[1]

# Runs trainer/train.py exactly as `python trainer/train.py --help` would (its folder first on sys.path, run as
# __main__), then reports where `evaluate` and every module loaded from trainer/ came from.
AS_SCRIPT = """
import json, runpy, sys
script = sys.argv[1]
sys.argv = [script, "--help"]
sys.path[0] = str(__import__("pathlib").Path(script).parent)
try:
    runpy.run_path(script, run_name="__main__")
except SystemExit:
    pass
import sysconfig
import evaluate
trainer_dir = sys.path[0]
loaded = {name: getattr(module, "__file__", None) or "" for name, module in list(sys.modules.items())}
print(json.dumps({"evaluate": evaluate.__file__, "has_load": callable(getattr(evaluate, "load", None)),
                  "site_packages": sysconfig.get_paths()["purelib"],
                  "from_trainer_dir": sorted(n for n, f in loaded.items() if f.startswith(trainer_dir))}))
"""


def test_train_script_resolves_evaluate_to_the_hugging_face_package():
    completed = subprocess.run([sys.executable, "-c", AS_SCRIPT, str(REPO / "trainer" / "train.py")], cwd=REPO,
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    # The Hugging Face package (the one with evaluate.load) from the environment's site-packages, wherever that lives
    # (a newcomer's .venv is inside the clone), never a module of this repository such as trainer/evaluation/metrics/.
    evaluate_file = Path(report["evaluate"])
    assert report["has_load"], report
    assert evaluate_file == Path(report["site_packages"]) / "evaluate" / "__init__.py", report
    assert not any(evaluate_file.is_relative_to(REPO / folder) for folder in ("trainer", "modeling", "data_pipelines"))
    # Modules of trainer/ are loaded once, as the `trainer` package (never as top-level `config`, `checkpoint`...).
    assert report["from_trainer_dir"], "the script imported nothing from trainer/"
    assert all(name.partition(".")[0] in ("trainer", "__main__") for name in report["from_trainer_dir"]), report


def test_console_scripts_point_at_main_functions():
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert {"showattend-prepare", "showattend-features", "showattend-train", "showattend-evaluate",
            "showattend-caption"} <= set(scripts)
    for command, target in scripts.items():
        module_name, function_name = target.split(":")
        assert callable(getattr(importlib.import_module(module_name), function_name)), command


def test_no_sys_path_edits_in_the_packages():
    for folder in ("trainer", "modeling", "data_pipelines"):
        for path in (REPO / folder).rglob("*.py"):
            assert "sys.path" not in path.read_text(encoding="utf-8"), path
