"""Every config default that docs/ or a comment of configs/*.yaml quotes matches the declared default
(``trainer.config.fields``, what ``trainer/train.py --help`` prints).

The quoting style the docs use: ``\\`eval.patience\\` (default 2)`` (also ``\\`key: value\\` (default \\`X\\`)``, naming
the value a page sets); in a YAML comment also ``key: value  # ... (default X)``, the key's section read from the
indentation. The value is read as YAML.
"""
import dataclasses
import re
from pathlib import Path

import yaml

from modeling import DecodingOptions
from trainer.config.fields import settings
from trainer.config.schema import TrainConfig

REPO = Path(__file__).resolve().parents[1]
DEFAULT = r"\(default\s+(?:`(?P<quoted>[^`]+)`|(?P<bare>[^),;:`]+))"
DOC_QUOTE = re.compile(r"`(?P<key>[a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)*)(?:: [^`]*)?`\s*" + DEFAULT)
TABLE_ROW = re.compile(r"^\| `(?P<name>[a-z_]+)` \| `--[a-z-]+` \| (?P<default>[^|]+?) \|", re.M)
YAML_LINE = re.compile(r"^(?P<indent> *)(?P<name>[a-z_][a-z0-9_]*):(?P<value>[^#]*)(?:#(?P<comment>.*))?$")


def declared_defaults() -> dict[str, object]:
    return {setting.key: setting.default for setting in settings(TrainConfig)}


def doc_quotes(text: str) -> list[tuple[str, str]]:
    """``(key, quoted default)`` of every ``\\`key\\` (default X)`` in ``text``."""
    return [(match["key"], (match["quoted"] or match["bare"]).strip()) for match in DOC_QUOTE.finditer(text)]


def yaml_comment_quotes(text: str) -> list[tuple[str, str]]:
    """``doc_quotes`` of the comments, plus ``(section.key, X)`` for ``key: value  # ... (default X)``."""
    quotes, sections = [], []
    for line in text.splitlines():
        comment = line.partition("#")[2] if line.lstrip().startswith("#") else ""
        match = YAML_LINE.match(line)
        if match:
            depth = len(match["indent"]) // 2
            sections = sections[:depth]
            comment = match["comment"] or ""
            key = ".".join([*sections, match["name"]])
            own = re.search(DEFAULT, comment)
            if own:
                quotes.append((key, (own["quoted"] or own["bare"]).strip()))
            if not match["value"].strip():
                sections.append(match["name"])
        quotes += doc_quotes(comment)
    return quotes


def wrong_quotes(quotes: list[tuple[str, str]], where: str) -> list[str]:
    """One line per quote that names no config key or a default other than the declared one."""
    declared, wrong = declared_defaults(), []
    for key, text in quotes:
        if key not in declared:
            wrong.append(f"{where}: `{key}` (default {text}) names no config key")
        elif yaml.safe_load(text) != declared[key]:
            wrong.append(f"{where}: `{key}` (default {text}), but the code's default is {declared[key]!r}")
    return wrong


def test_every_default_quoted_in_docs_matches_the_code():
    pages = sorted((REPO / "docs").glob("*.md")) + [REPO / name / "README.md" for name in (".", "benchmarks", "launch")]
    quotes = {page: doc_quotes(page.read_text(encoding="utf-8")) for page in pages}
    assert sum(map(len, quotes.values())) >= 5, "the docs quote defaults as `key` (default X); the parser found few"
    wrong = [line for page, found in quotes.items() for line in wrong_quotes(found, page.relative_to(REPO).as_posix())]
    assert not wrong, "\n".join(wrong)


def test_every_default_quoted_in_config_comments_matches_the_code():
    files = sorted((REPO / "configs").glob("*.yaml"))
    quotes = {path: yaml_comment_quotes(path.read_text(encoding="utf-8")) for path in files}
    assert sum(map(len, quotes.values())) >= 1
    wrong = [line for path, found in quotes.items() for line in wrong_quotes(found, path.relative_to(REPO).as_posix())]
    assert not wrong, "\n".join(wrong)


def test_the_parser_finds_a_wrong_default_in_a_doc_snippet():
    snippet = ("stops after `eval.patience` (default 2) validations; `optim.encoder_lr_factor` (default 0.25: 1e-4); "
               "`logging.trackers: [tensorboard, wandb]` (default `[tensorboard]`); `seed` (default 0).")
    quotes = doc_quotes(snippet)
    assert quotes == [("eval.patience", "2"), ("optim.encoder_lr_factor", "0.25"),
                      ("logging.trackers", "[tensorboard]"), ("seed", "0")]
    assert wrong_quotes(quotes, "snippet") == [
        "snippet: `eval.patience` (default 2), but the code's default is 0"]
    assert wrong_quotes([("eval.paitence", "0")], "snippet") == [
        "snippet: `eval.paitence` (default 0) names no config key"]


def test_the_parser_reads_a_yaml_comment_in_its_section():
    snippet = ("# `train.max_steps` (default 1000) steps\neval:\n  every_steps: 100   # (default 400)\n"
               "  best_min_z: 2.0  # (default 0)\nseed: 1  # (default 0)\n")
    quotes = yaml_comment_quotes(snippet)
    assert quotes == [("train.max_steps", "1000"), ("eval.every_steps", "400"), ("eval.best_min_z", "0"),
                      ("seed", "0")]
    assert wrong_quotes(quotes, "a.yaml") == ["a.yaml: `eval.every_steps` (default 400), but the code's default is 500"]


def table_defaults(markdown: str) -> dict[str, object]:
    """``| `field` | `--flag` | default | ... |`` rows: field -> the default cell's first word as YAML, ``off``: None."""
    cells = {match["name"]: match["default"].split()[0] for match in TABLE_ROW.finditer(markdown)}
    return {name: None if cell == "off" else yaml.safe_load(cell) for name, cell in cells.items()}


def test_the_decoding_table_of_inference_md_lists_every_control_with_its_default():
    documented = table_defaults((REPO / "docs" / "inference.md").read_text(encoding="utf-8"))
    declared = {spec.name: spec.default for spec in dataclasses.fields(DecodingOptions)}
    assert documented.keys() == declared.keys()
    wrong = [f"docs/inference.md: `{name}` default {documented[name]!r}, but DecodingOptions says {value!r}"
             for name, value in declared.items()
             if (documented[name] is None and value) or (documented[name] is not None and documented[name] != value)]
    assert not wrong, "\n".join(wrong)


def test_table_defaults_reads_off_and_numbers():
    rows = "| `top_k` | `--top-k` | 0 (off) | x |\n| `sample` | `--sample` | off | y |\n| `top_p` | `--top-p` | 0.9 | z |\n"
    assert table_defaults(rows) == {"top_k": 0, "sample": None, "top_p": 0.9}
