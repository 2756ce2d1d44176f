"""Named generator presets: every knob of the template scene family (one or two objects) in one frozen dataclass
(the grid family's: ``grid_presets.GridPreset``).

A preset fixes the look (image size, palette, shapes, sizes, background tint, pixel noise), the scene statistics (one or
two objects, relations) and the wording (caption templates and paraphrases, capitals, final punctuation) of a dataset.
``with_knobs(preset, {"image_size": 64, "colours": ["red", "blue"]})`` returns a checked copy with some knobs changed.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass

# Every colour a preset may use (name -> RGB); a preset picks a subset.
PALETTE = {"red": (215, 30, 40), "green": (40, 160, 60), "blue": (40, 80, 215), "yellow": (240, 200, 30),
           "purple": (140, 60, 170), "orange": (245, 130, 20), "pink": (240, 120, 190), "brown": (120, 70, 30),
           "black": (20, 20, 20), "grey": (128, 128, 128), "cyan": (30, 200, 210), "white": (250, 250, 250)}
# Shapes the renderer can draw (data_pipelines.synthetic.drawing).
DRAWABLE_SHAPES = ("circle", "square", "triangle", "diamond", "star", "cross")
LAYOUTS = ("horizontal", "vertical")


@dataclass(frozen=True)
class Preset:
    """One synthetic dataset family. Sizes are fractions of the image side; templates are lower case, unpunctuated.

    Single-object templates use ``{thing}`` ("small red circle"); two-object templates use ``{first}``/``{second}``
    ("red circle"), ``{relation}``/``{inverse}`` (first relative to second, and back) and ``{short}`` (a short form
    used after "is"). ``a`` before a vowel becomes ``an``.
    """

    name: str
    image_size: int
    colours: tuple[str, ...]
    shapes: tuple[str, ...]
    shape_words: dict  # drawable shape -> the word captions use for it (default: the shape's own name)
    single_sizes: dict  # size word -> (low, high) fraction of the image side, for one-object scenes
    pair_size: tuple[float, float]  # size range of each object in a two-object scene
    two_object_probability: float  # object count: 1 or 2 objects
    position_jitter: float  # two-object scenes: +- this fraction of the side around the quarter points
    relations: dict  # layout ("horizontal" | "vertical") -> (relation, inverse, short)
    single_templates: tuple[str, ...]
    pair_templates: tuple[str, ...]
    captions_per_image: int = 5  # a random subset of the templates when there are more templates than this
    capitalise: bool = True
    end_punctuation: str = "."
    background: tuple[int, int, int] = (255, 255, 255)
    background_tint: int = 0  # each image's background channel values move by up to +- this much
    noise: float = 0.0  # standard deviation of Gaussian pixel noise (0-255 scale)
    bad_file_fraction: float = 0.0  # this fraction of image files are written corrupt (stays listed in the JSON)

    def __post_init__(self) -> None:
        problems = []
        if not isinstance(self.image_size, int) or self.image_size < 32:
            problems.append(f"image_size must be an int >= 32, got {self.image_size!r}")
        unknown = [c for c in self.colours if c not in PALETTE]
        if not self.colours or unknown:
            problems.append(f"colours must be a non-empty subset of {sorted(PALETTE)}, got {list(self.colours)}")
        if not self.shapes or any(s not in DRAWABLE_SHAPES for s in self.shapes):
            problems.append(f"shapes must be a non-empty subset of {list(DRAWABLE_SHAPES)}, got {list(self.shapes)}")
        if sorted(self.relations) != sorted(LAYOUTS) or any(len(r) != 3 for r in self.relations.values()):
            problems.append(f"relations must map each of {list(LAYOUTS)} to (relation, inverse, short)")
        for label, (low, high) in [*self.single_sizes.items(), ("pair_size", self.pair_size)]:
            if not 0.05 <= low <= high <= 0.7:
                problems.append(f"size range {label!r} must satisfy 0.05 <= low <= high <= 0.7, got ({low}, {high})")
        if not self.single_sizes:
            problems.append("single_sizes needs at least one size word")
        if not 0 <= self.two_object_probability <= 1 or not 0 <= self.position_jitter <= 0.1:
            problems.append("two_object_probability must be in [0, 1] and position_jitter in [0, 0.1]")
        if not 1 <= self.captions_per_image <= min(len(self.single_templates), len(self.pair_templates)):
            problems.append(f"captions_per_image must be between 1 and the number of templates of each kind, got "
                            f"{self.captions_per_image} for {len(self.single_templates)} single / "
                            f"{len(self.pair_templates)} pair templates")
        if not 0 <= self.background_tint <= 127 or self.noise < 0 or not 0 <= self.bad_file_fraction < 0.5:
            problems.append("background_tint must be in [0, 127], noise >= 0 and bad_file_fraction in [0, 0.5)")
        if problems:
            raise ValueError(f"synthetic preset {self.name!r}: " + "; ".join(problems))

    def words(self) -> set[str]:
        """Every content word a caption of this preset can use for colours, shapes and sizes."""
        return {*self.colours, *(self.shape_word(s) for s in self.shapes), *self.single_sizes}

    def shape_word(self, shape: str) -> str:
        return self.shape_words.get(shape, shape)


def with_knobs(preset, knobs: dict):
    """A checked copy of ``preset`` (a ``Preset`` or ``GridPreset``) with some knobs changed; an unknown knob is an
    error naming the valid ones."""
    fields = {field.name: field for field in dataclasses.fields(preset)}
    unknown = sorted(set(knobs) - set(fields) - {"name"})
    if unknown:
        raise ValueError(f"unknown synthetic knob {unknown[0]!r}; valid knobs: {sorted(set(fields) - {'name'})}")
    hints = typing.get_type_hints(type(preset))
    converted = {}
    for key, value in knobs.items():
        if typing.get_origin(hints[key]) is tuple and isinstance(value, list):
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        elif hints[key] is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        converted[key] = value
    return dataclasses.replace(preset, **converted)
