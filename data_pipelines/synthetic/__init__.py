"""Offline synthetic captioning datasets: drawn scenes of coloured shapes, several captions each, Karpathy JSON.

``python -m data_pipelines.synthetic --out DIR --num-images N [--preset shapes|toys|cluttered|scenes|textures]
[--seed S] [--image-size PX] [KNOB=VALUE ...]`` writes ``DIR/images/NNNNNN.jpg`` and ``DIR/dataset_synthetic.json``
(splits 80/10/10), ready for
``python -m data_pipelines.prepare karpathy --json DIR/dataset_synthetic.json --images DIR``.

Each preset (``catalogue``) is a small grammar whose captions are paraphrases sharing most n-grams, so a decoder on
frozen (even random) ResNet-50 features can learn it in minutes, while the content (colours x shapes x layout x size)
varies enough that one caption for every image scores far lower. The presets differ in vocabulary, wording and visual
difficulty, so defaults can be checked on data they were not tuned on. ``shapes``, ``toys`` and ``cluttered`` hold one
or two objects worded by fixed templates (``Preset``); ``scenes`` and ``textures`` come from another generator
(``GridPreset``): up to four objects on a grid, with counts, relations, sizes, textures and composed, longer captions.
"""
from .captions import describe
from .catalogue import DEFAULT_PRESET, PRESETS, get_preset
from .drawing import draw_scene
from .generate import JSON_NAME, generate, resolve_preset
from .grid_presets import DRAWABLE_TEXTURES, GridPreset
from .presets import DRAWABLE_SHAPES, PALETTE, Preset, with_knobs
from .scenes import sample_scene

__all__ = ["DEFAULT_PRESET", "DRAWABLE_SHAPES", "DRAWABLE_TEXTURES", "JSON_NAME", "PALETTE", "PRESETS", "GridPreset",
           "Preset", "describe", "draw_scene", "generate", "get_preset", "resolve_preset", "sample_scene", "with_knobs"]
