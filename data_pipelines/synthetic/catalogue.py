"""The named presets: ``shapes`` (the demo's default), ``toys`` and ``cluttered`` (one or two objects, fixed templates),
and ``scenes`` and ``textures`` (grid scenes of several objects from another generator: ``GridPreset``).

They differ in vocabulary (colour and shape words), wording (templates, paraphrases, capitals, punctuation) and visual
difficulty (image size, object sizes, background tint, pixel noise, corrupt files). ``shapes`` reproduces the original
demo set byte for byte. ``scenes`` and ``textures`` are harder: more objects, counts, relations, sizes, textures and
longer, more varied captions, for checking recipe choices on data they were not tuned on.
"""
from __future__ import annotations

from .grid_presets import GridPreset
from .presets import Preset

SHAPES = Preset(
    name="shapes", image_size=128,
    colours=("blue", "green", "purple", "red", "yellow"), shapes=("circle", "square", "triangle"),
    shape_words={"circle": "circle", "square": "square", "triangle": "triangle"},
    single_sizes={"small": (0.24, 0.32), "large": (0.5, 0.62)}, pair_size=(0.3, 0.4),
    two_object_probability=0.75, position_jitter=0.06,
    relations={"horizontal": ("to the left of", "to the right of", "left of"),
               "vertical": ("above", "below", "above")},
    single_templates=("a {thing}", "there is a {thing}", "a {thing} on a plain background",
                      "the picture shows a {thing}", "a single {thing}"),
    pair_templates=("a {first} {relation} a {second}", "there is a {first} {relation} a {second}",
                    "a {first} is {short} a {second}", "a {second} {inverse} a {first}",
                    "the {first} is {relation} the {second}"),
)

TOYS = Preset(
    name="toys", image_size=96,
    colours=("black", "brown", "cyan", "orange", "pink", "grey"), shapes=("circle", "square", "star", "diamond"),
    shape_words={"circle": "ball", "square": "box", "star": "star", "diamond": "kite"},
    single_sizes={"tiny": (0.22, 0.3), "big": (0.5, 0.6)}, pair_size=(0.28, 0.38),
    two_object_probability=0.7, position_jitter=0.05,
    relations={"horizontal": ("on the left of", "on the right of", "left of"),
               "vertical": ("over", "under", "over")},
    single_templates=("a {thing} by itself", "a photo of a {thing}", "one {thing}", "a lone {thing}",
                      "a {thing} on a coloured background", "just a {thing}", "an image of a {thing}"),
    pair_templates=("a {first} {relation} a {second}", "a photo of a {first} {relation} a {second}",
                    "a {second} {inverse} a {first}", "the {first} sits {relation} the {second}",
                    "a {first} and a {second}, the {first} {short} the {second}",
                    "two toys: a {first} {relation} a {second}", "a {second} with a {first} {relation} it"),
    capitalise=False, end_punctuation="",
    background=(235, 225, 200), background_tint=20,
)

CLUTTERED = Preset(
    name="cluttered", image_size=160,
    colours=("red", "green", "blue", "yellow", "orange", "purple", "pink", "black"),
    shapes=("circle", "square", "triangle", "star", "cross"),
    shape_words={"circle": "disc", "square": "square", "triangle": "triangle", "star": "star", "cross": "cross"},
    single_sizes={"small": (0.2, 0.26), "medium": (0.34, 0.42), "large": (0.5, 0.6)}, pair_size=(0.24, 0.34),
    two_object_probability=0.8, position_jitter=0.08,
    relations={"horizontal": ("to the left of", "to the right of", "left of"),
               "vertical": ("above", "below", "above")},
    single_templates=("a {thing} on a noisy background", "there is one {thing} here", "a {thing}",
                      "a picture containing a {thing}", "only a {thing} can be seen", "a {thing} in the frame"),
    pair_templates=("a {first} {relation} a {second}", "there is a {first} {relation} a {second}",
                    "a {first} is {short} a {second}", "a {second} is {inverse} a {first}",
                    "the {first} lies {relation} the {second}", "a {first} and a {second}",
                    "on a noisy background, a {first} {relation} a {second}"),
    end_punctuation="!",
    background=(150, 150, 150), background_tint=40, noise=18.0, bad_file_fraction=0.01,
)

SCENES = GridPreset(
    name="scenes", image_size=144,
    colours=("blue", "green", "orange", "purple", "red", "yellow"), shapes=("circle", "square", "triangle", "star"),
    object_counts=(2, 3, 4), sizes={"small": (0.45, 0.6), "large": (0.8, 0.95)}, repeat_probability=0.35,
    line_probability=0.5,
    templates={"list": ("{list}", "there {be} {list} in the picture", "{total}: {list}", "a picture of {list}",
                        "{list} on a white background", "we can see {list}"),
               "pair": ("{a} {rel} {b}", "in the picture {a} is {rel} {b}", "{b} is {inv} {a}",
                        "{b} with {a} {rel} it"),
               "adjacent": ("{a} and {b} next to each other", "{a} next to {b}"),
               "between": ("{middle} between {ends}", "{middle} is between {ends}"),
               "line": ("{items} in a {line}",),
               "position": ("{a} {where}", "there is {a} {where} of the picture")},
    synonyms={"to the left of": ("left of",), "to the right of": ("right of",), "in the middle": ("in the centre",)},
)

TEXTURES = GridPreset(
    name="textures", image_size=160,
    colours=("black", "blue", "green", "orange", "pink", "red"),
    shapes=("circle", "square", "triangle", "diamond", "cross"),
    object_counts=(1, 2, 3), sizes={"small": (0.5, 0.6), "large": (0.8, 0.95)},
    textures=("solid", "striped", "dotted", "outlined"), repeat_probability=0.2, line_probability=0.6,
    templates={"list": ("{list}", "an image of {list}", "here we can see {list}", "{list} and nothing else",
                        "{list} drawn on a sheet of paper", "a drawing with {list} in it"),
               "pair": ("{a} {rel} {b}", "{a} is drawn {rel} {b}", "{b} has {a} {rel} it"),
               "adjacent": ("{a} and {b} side by side", "{a} beside {b}"),
               "between": ("{middle} in between {ends}",),
               "line": ("{items} lined up in a {line}",),
               "position": ("{a} drawn {where}", "{where} there is {a}")},
    relations={"left": "on the left of", "right": "on the right of", "above": "over", "below": "under"},
    positions={"top left": "in the upper left corner", "top": "near the top", "top right": "in the upper right corner",
               "left": "at the left edge", "middle": "in the centre", "right": "at the right edge",
               "bottom left": "in the lower left corner", "bottom": "near the bottom",
               "bottom right": "in the lower right corner"},
    synonyms={"large": ("big",), "small": ("little",), "square": ("box",), "striped": ("stripy",)},
    object_word="object", list_separator=" and ", capitalise=False, end_punctuation="",
    background=(232, 222, 196), background_tint=24, noise=8.0,
)

PRESETS = {preset.name: preset for preset in (SHAPES, TOYS, CLUTTERED, SCENES, TEXTURES)}
DEFAULT_PRESET = "shapes"


def get_preset(name: str) -> Preset | GridPreset:
    if name not in PRESETS:
        raise ValueError(f"unknown synthetic preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name]
