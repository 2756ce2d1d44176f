"""The README's two commands are what a newcomer and CI run: a demo command and a test command, each making its
virtual environment at .venv inside the clone, and `.ci/run` runs exactly the README's test command."""
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    block = re.search(r"^```bash\n(.*?)^```", (REPO / "README.md").read_text(encoding="utf-8"), re.S | re.M).group(1)
    return [line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_readme_opens_with_a_demo_command_and_a_test_command():
    demo, tests = readme_commands()
    for command in (demo, tests):
        assert command.startswith("python3 -m venv .venv && . .venv/bin/activate && bash launch/install.sh"), command
    assert demo.endswith("bash launch/demo.sh")
    assert tests.endswith("python -m pytest -q") and "install.sh --test" in tests


def test_ci_runs_the_readme_test_command_as_written():
    printed = subprocess.run(["bash", str(REPO / ".ci" / "run"), "--print"], capture_output=True, text=True,
                             check=True, timeout=60).stdout.strip()
    assert printed == readme_commands()[1]


def test_the_venv_inside_the_clone_is_ignored_by_git_and_ruff():
    assert ".venv/" in (REPO / ".gitignore").read_text().splitlines()


def test_install_script_rejects_an_unknown_option():
    completed = subprocess.run(["bash", str(REPO / "launch" / "install.sh"), "--tests"], capture_output=True, text=True,
                               timeout=60)
    assert completed.returncode == 2 and "usage" in completed.stderr
