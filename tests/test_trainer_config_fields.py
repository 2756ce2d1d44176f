"""Config fields declared once (``setting``: default, doc, range): every field has a doc, every declared range is
enforced at load, and ``trainer/train.py --help`` lists every key with its default."""
import dataclasses
import json
import subprocess
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from modeling.config import CaptionerConfig, Range, setting
from trainer.config.checks import numbers_are_in_range
from trainer.config.fields import sections, settings
from trainer.config.schema import TrainConfig, load_config

REPO = Path(__file__).resolve().parents[1]


def flat_defaults(values: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in values.items():
        flat.update(flat_defaults(value, f"{prefix}{key}.") if isinstance(value, dict) else {prefix + key: value})
    return flat


def test_help_lists_every_key_with_its_default():
    result = subprocess.run([sys.executable, "trainer/train.py", "--help"], cwd=REPO, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    defaults = flat_defaults(TrainConfig().to_dict())
    assert {"train.max_steps", "optim.lr", "loss.attention_lambda", "scst.samples", "data.root"} <= set(defaults)
    for key, default in defaults.items():
        assert f"\n  {key} = {json.dumps(default)}  (" in result.stdout, key
    for line in ["train.max_steps = 1000  (int, 1 <= value)", "optim.lr = 0.0004  (float, 0 < value)",
                 'teacher_forcing.schedule = "constant"  (one of "constant", "linear", "exponential", '
                 '"inverse_sigmoid")', "model.dropout = 0.5  (float, 0 <= value < 1)",
                 "data.features = null  (str or null)"]:
        assert line in result.stdout
    assert "weight of the doubly stochastic attention term" in result.stdout  # the docs come along


def test_every_field_and_section_has_a_doc():
    for cls in [CaptionerConfig, *(section for _, section in sections(TrainConfig))]:
        # dataclass() writes the signature into __doc__ when the class has no docstring
        assert cls.__doc__ and not cls.__doc__.startswith(f"{cls.__name__}("), cls.__name__
        hints = typing.get_type_hints(cls)
        for spec in dataclasses.fields(cls):
            if not dataclasses.is_dataclass(hints[spec.name]):  # a section's doc is its docstring
                assert spec.metadata.get("doc"), f"{cls.__name__}.{spec.name} has no doc"


def test_range_checks_come_from_the_declarations():
    @dataclass
    class Part:
        size: int = setting(4, "a size", Range(1, 8))

    @dataclass
    class Whole:
        part: Part = field(default_factory=Part)

    numbers_are_in_range(Whole())
    with pytest.raises(ValueError, match=r"config key 'part\.size' = 9 is out of range: expected 1 <= value <= 8"):
        numbers_are_in_range(Whole(Part(9)))


def outside(bounds: Range, kind: type) -> list:
    """Values just outside ``bounds`` for an int or float field."""
    step = 1 if kind is int else 0.5
    values = []
    if bounds.low is not None:
        values.append(bounds.low if bounds.open_low else bounds.low - step)
    if bounds.high is not None:
        values.append(bounds.high if bounds.open_high else bounds.high + step)
    return [kind(value) for value in values]


BOUNDED = [(setting.key, value) for setting in settings(TrainConfig) if setting.bounds
           for value in outside(setting.bounds, setting.annotation)]


@pytest.mark.parametrize("key, value", BOUNDED)
def test_every_declared_range_is_enforced_at_load(key, value):
    with pytest.raises(ValueError) as error:
        load_config(None, ["data.root=/x", f"{key}={value}"])
    section, _, name = key.rpartition(".")
    expected = f"config section 'model': CaptionerConfig.{name} must be" if section == "model" else \
        f"config key {key!r} = {value!r} is out of range"
    assert str(error.value).startswith(expected)
