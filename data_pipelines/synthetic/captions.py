"""Captions of a scene from the preset's templates (a grid scene's: ``grid_captions``): paraphrases, articles, capitals
and final punctuation."""
from __future__ import annotations

import random
import re

from .grid_captions import grid_captions
from .grid_presets import GridPreset
from .presets import Preset

_ARTICLE_BEFORE_VOWEL = re.compile(r"\ba (?=[aeiou])")


def _finish(text: str, preset: Preset | GridPreset) -> str:
    text = _ARTICLE_BEFORE_VOWEL.sub("an ", text)
    if preset.capitalise:
        text = text[0].upper() + text[1:]
    return text + preset.end_punctuation


def describe(scene: dict, preset: Preset | GridPreset, rng: random.Random) -> list[str]:
    """``preset.captions_per_image`` differently worded captions (a random subset when there are more templates)."""
    if isinstance(preset, GridPreset):
        return [_finish(text, preset) for text in grid_captions(scene, preset, rng)]
    if scene["layout"] == "single":
        shape = scene["shapes"][0]
        values = {"thing": f"{scene['size_word']} {shape['colour']} {preset.shape_word(shape['shape'])}"}
        templates = preset.single_templates
    else:
        first, second = (f"{shape['colour']} {preset.shape_word(shape['shape'])}" for shape in scene["shapes"])
        relation, inverse, short = preset.relations[scene["layout"]]
        values = {"first": first, "second": second, "relation": relation, "inverse": inverse, "short": short}
        templates = preset.pair_templates
    if len(templates) > preset.captions_per_image:
        templates = rng.sample(templates, preset.captions_per_image)
    return [_finish(template.format(**values), preset) for template in templates]
