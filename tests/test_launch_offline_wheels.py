"""launch/offline_wheels.sh: which requirements it resolves and how it calls pip (--dry-run, no network), and its
argument errors. A real download is run by hand (docs/results.md, "GPU check")."""
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "launch" / "offline_wheels.sh"


def wheels(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=REPO, capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable})


def requirements(output: str) -> list[str]:
    return [line.split(": ", 1)[1] for line in output.splitlines() if line.startswith("requirement: ")]


def test_dry_run_resolves_the_core_and_skips_what_gpu_images_carry(tmp_path):
    result = wheels(str(tmp_path / "w"), "--dry-run")
    assert result.returncode == 0, result.stderr
    core = requirements(result.stdout)
    names = {requirement.split(">")[0].split("=")[0].split("<")[0] for requirement in core}
    assert {"setuptools", "wheel", "accelerate", "webdataset", "safetensors", "torch", "torchvision"} <= names
    assert not names & {"datasets", "evaluate", "pycocoevalcap", "pytest"}  # extras only
    skipped = result.stdout.split("skipped: project names matching ", 1)[1].splitlines()[0]
    assert skipped == "^(torch|torchvision|triton|pytorch-triton|nvidia-.*|cuda-.*)$"
    download = next(line for line in result.stdout.splitlines() if line.startswith("download: "))
    assert f"--no-deps --only-binary=:all: --dest {tmp_path / 'w'}" in download
    assert not (tmp_path / "w").exists()  # a dry run downloads nothing


def test_target_tags_extras_and_torch_pin_reach_pip(tmp_path):
    result = wheels(str(tmp_path), "--python", "3.12", "--platform", "manylinux_2_28_x86_64", "--platform",
                    "manylinux2014_x86_64", "--torch", "2.6.0", "--extras", "hf,meteor", "--dry-run")
    assert result.returncode == 0, result.stderr
    listed = requirements(result.stdout)
    assert "torch==2.6.0" in listed and "datasets>=2.19" in listed and "pycocoevalcap==1.2" in listed
    tags = "--python-version 3.12 --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64"
    resolve = next(line for line in result.stdout.splitlines() if line.startswith("resolve: "))
    assert "--dry-run --ignore-installed" in resolve and "--target" in resolve and tags in resolve
    assert tags in next(line for line in result.stdout.splitlines() if line.startswith("download: "))


def test_bad_arguments_are_one_line_errors(tmp_path):
    for args, message in [((), "DIR is required"), ((str(tmp_path), "--python"), "--python needs a version"),
                          ((str(tmp_path), "--extras", "gpu"), "--extras 'gpu' is not in"),
                          ((str(tmp_path), "--fast"), "unknown option '--fast'"),
                          ((str(tmp_path), str(tmp_path / "b")), "one DIR only")]:
        result = wheels("--dry-run", *args)  # --dry-run first: nothing may reach pip
        assert result.returncode == 2 and message in result.stderr, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
