"""The README's two commands are what a newcomer and CI run: a demo command and a test command, each making its
virtual environment at .venv inside the clone, and `.ci/run` runs exactly the README's test command. The README stays
a short product page whose links lead somewhere."""
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README_MAX_LINES = 200


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


def test_readme_is_a_short_product_page():
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; measurements and details go to docs/"


def relative_link_targets(markdown: str) -> list[str]:
    """Targets of ``[text](target)`` and ``![alt](target)`` links that are files of the repository, anchors cut off."""
    targets = re.findall(r"\]\(([^)\s]+)\)", markdown)
    return [target.split("#")[0] for target in targets
            if not re.match(r"[a-z][a-z0-9+.-]*:", target) and not target.startswith("#")]


def test_every_relative_link_of_the_readme_points_to_an_existing_file():
    targets = relative_link_targets((REPO / "README.md").read_text(encoding="utf-8"))
    assert "docs/results.md" in targets
    missing = [target for target in targets if not (REPO / target).is_file()]
    assert not missing, f"README.md links to missing files: {missing}"


def test_link_targets_skip_urls_and_anchors_and_cut_fragments():
    markdown = "[a](docs/x.md#part) ![b](docs/y.png) [c](https://example.org/z.md) [d](#local) [e](mailto:me@x.org)"
    assert relative_link_targets(markdown) == ["docs/x.md", "docs/y.png"]
