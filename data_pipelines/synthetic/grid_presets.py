"""Knobs of the grid scene family: several objects, one per cell of a 3 x 3 grid, with sizes, textures and repeats,
described by counts, relations, lines and positions (``grid_scenes``, ``grid_captions``).

Where ``Preset`` scenes hold one or two objects in fixed places with one template each, a ``GridPreset`` scene holds
any of ``object_counts`` objects, and its captions are composed from several kinds of sentence (an inventory with
counts, a relation between two objects, two objects next to each other, one between two others, a full row or column,
one object's position), with synonyms, so they are longer and more varied. Every caption is true of the drawn image.
"""
from __future__ import annotations

import re
import string
from dataclasses import dataclass, field

from ..vocab import tokenize
from .presets import DRAWABLE_SHAPES, PALETTE

GRID = 3  # cells per side
DRAWABLE_TEXTURES = ("solid", "striped", "dotted", "outlined")  # "solid" is never named in captions
NUMBER_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
# The fields each kind of template may use (grid_captions fills them).
TEMPLATE_FIELDS = {"list": {"list", "be", "total"}, "pair": {"a", "b", "rel", "inv"}, "adjacent": {"a", "b"},
                   "between": {"middle", "ends"}, "line": {"items", "line"}, "position": {"a", "where"}}
CELL_NAMES = (("top left", "top", "top right"), ("left", "middle", "right"), ("bottom left", "bottom", "bottom right"))
POSITIONS = {"top left": "in the top left corner", "top": "at the top", "top right": "in the top right corner",
             "left": "on the left", "middle": "in the middle", "right": "on the right",
             "bottom left": "in the bottom left corner", "bottom": "at the bottom",
             "bottom right": "in the bottom right corner"}
RELATIONS = {"left": "to the left of", "right": "to the right of", "above": "above", "below": "below"}
_FIELD = re.compile(r"\{\w+\}")  # a template's placeholder


def plural(word: str) -> str:
    return word + ("es" if word.endswith(("s", "x", "sh", "ch")) else "s")


@dataclass(frozen=True)
class GridPreset:
    """One grid scene family. Sizes are fractions of a cell's side; templates are lower case, unpunctuated.

    Templates per kind (``TEMPLATE_FIELDS``): ``{list}`` every object grouped with counts ("two red squares and a blue
    circle"), ``{be}`` "is"/"are" for it, ``{total}`` ("three shapes"); ``{a}``/``{b}``: one object each (unique in the
    scene), ``{rel}``/``{inv}``: a relative to b and back; ``{middle}`` between ``{ends}``; ``{items}`` of a full
    ``{line}`` ("row"/"column") in order; ``{where}``: a cell's phrase (``positions``). A size word is named only when
    a preset has several sizes, a texture unless it is "solid"; ``synonyms`` maps a word or phrase to alternatives,
    one picked per mention.
    """

    name: str
    image_size: int
    colours: tuple[str, ...]
    shapes: tuple[str, ...]
    object_counts: tuple[int, ...]  # a scene holds one of these numbers of objects (uniformly)
    sizes: dict  # size word -> (low, high) fraction of a cell's side
    templates: dict  # kind (TEMPLATE_FIELDS) -> templates
    shape_words: dict = field(default_factory=dict)  # drawable shape -> the word captions use (default its name)
    textures: tuple[str, ...] = ("solid",)
    repeat_probability: float = 0.3  # each further object copies an earlier one's look (so counts occur)
    line_probability: float = 0.0  # a scene of 3 objects or more fills a row or column (so lines and "between" occur)
    relations: dict = field(default_factory=lambda: dict(RELATIONS))  # "left" | "right" | "above" | "below" -> phrase
    positions: dict = field(default_factory=lambda: dict(POSITIONS))  # cell name (CELL_NAMES) -> phrase
    synonyms: dict = field(default_factory=dict)  # word or phrase -> alternatives
    object_word: str = "shape"  # {total}: "three shapes"
    list_separator: str = ", "  # between the groups of {list} but the last ("and")
    max_words: int = 16  # longer captions are left out while shorter ones remain (the demo decodes up to 16 words)
    captions_per_image: int = 5
    capitalise: bool = True
    end_punctuation: str = "."
    background: tuple[int, int, int] = (255, 255, 255)
    background_tint: int = 0
    noise: float = 0.0
    bad_file_fraction: float = 0.0

    def __post_init__(self) -> None:
        problems = []
        if not isinstance(self.image_size, int) or self.image_size < 48:
            problems.append(f"image_size must be an int >= 48, got {self.image_size!r}")
        if not self.colours or any(c not in PALETTE for c in self.colours):
            problems.append(f"colours must be a non-empty subset of {sorted(PALETTE)}, got {list(self.colours)}")
        if not self.shapes or any(s not in DRAWABLE_SHAPES for s in self.shapes):
            problems.append(f"shapes must be a non-empty subset of {list(DRAWABLE_SHAPES)}, got {list(self.shapes)}")
        if not self.textures or any(t not in DRAWABLE_TEXTURES for t in self.textures):
            problems.append(f"textures must be a non-empty subset of {list(DRAWABLE_TEXTURES)}, "
                            f"got {list(self.textures)}")
        if not self.object_counts or any(not 1 <= n <= GRID * GRID for n in self.object_counts):
            problems.append(f"object_counts must be numbers from 1 to {GRID * GRID}, got {list(self.object_counts)}")
        if not self.sizes or any(not 0.2 <= low <= high <= 0.95 for low, high in self.sizes.values()):
            problems.append(f"sizes must map size words to 0.2 <= low <= high <= 0.95 of a cell, got {self.sizes}")
        for kind, allowed in TEMPLATE_FIELDS.items():
            used = {name for text in self.templates.get(kind, ()) for _, name, _, _ in string.Formatter().parse(text)}
            if not self.templates.get(kind) or not used - {None} <= allowed:
                problems.append(f"templates[{kind!r}] must be a non-empty list using only {sorted(allowed)}")
        if set(self.templates) - set(TEMPLATE_FIELDS):
            problems.append(f"templates has unknown kinds {sorted(set(self.templates) - set(TEMPLATE_FIELDS))}")
        if sorted(self.relations) != sorted(RELATIONS) or sorted(self.positions) != sorted(POSITIONS):
            problems.append(f"relations must name {sorted(RELATIONS)} and positions {sorted(POSITIONS)}")
        if not 1 <= self.captions_per_image <= len(self.templates.get("list", ())):
            problems.append(f"captions_per_image must be between 1 and the number of list templates, got "
                            f"{self.captions_per_image}")
        if not 0 <= self.repeat_probability <= 1 or not 0 <= self.line_probability <= 1 or self.max_words < 4:
            problems.append("repeat_probability and line_probability must be in [0, 1], and max_words >= 4")
        if not 0 <= self.background_tint <= 127 or self.noise < 0 or not 0 <= self.bad_file_fraction < 0.5:
            problems.append("background_tint must be in [0, 127], noise >= 0 and bad_file_fraction in [0, 0.5)")
        if problems:
            raise ValueError(f"synthetic preset {self.name!r}: " + "; ".join(problems))

    def shape_word(self, shape: str) -> str:
        return self.shape_words.get(shape, shape)

    def words(self) -> set[str]:
        """Every word a caption of this preset can use (templates, content words, synonyms, plurals, numbers)."""
        nouns = {self.object_word, *(self.shape_word(s) for s in self.shapes)}
        nouns |= {synonym for noun in nouns for synonym in self.synonyms.get(noun, ())}
        phrases = [*self.colours, *(t for t in self.textures if t != "solid"), *self.relations.values(),
                   *self.positions.values(), *(self.sizes if len(self.sizes) > 1 else ())]
        phrases += [synonym for phrase in phrases for synonym in self.synonyms.get(phrase, ())]
        templates = [_FIELD.sub(" ", text) for texts in self.templates.values() for text in texts]
        counted = NUMBER_WORDS[2:max(self.object_counts) + 1]
        return {*tokenize(" ".join([*phrases, *templates, "is are and a an row column", *counted])),
                *nouns, *map(plural, nouns)}
