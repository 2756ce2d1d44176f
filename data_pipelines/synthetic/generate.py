"""Writing a synthetic dataset: images plus ``dataset_synthetic.json`` in Karpathy format (splits train/val/test)."""
from __future__ import annotations

import json
import os
import random
from pathlib import Path

from ..vocab import tokenize
from .captions import describe
from .catalogue import DEFAULT_PRESET, get_preset
from .drawing import draw_scene
from .grid_presets import GridPreset
from .presets import Preset, with_knobs
from .scenes import sample_scene

JSON_NAME = "dataset_synthetic.json"


def _corrupt_jpeg(path: Path, rng: random.Random) -> None:
    """A file no image reader accepts: a JPEG start marker followed by noise."""
    path.write_bytes(b"\xff\xd8\xff\xe0" + bytes(rng.randrange(256) for _ in range(64)))


def resolve_preset(preset: str | Preset | GridPreset = DEFAULT_PRESET, image_size: int | None = None,
                   knobs: dict | None = None) -> Preset | GridPreset:
    """A preset by name (or as given) with ``image_size`` and other knobs applied."""
    preset = get_preset(preset) if isinstance(preset, str) else preset
    knobs = dict(knobs or {})
    if image_size is not None:
        knobs["image_size"] = image_size
    return with_knobs(preset, knobs) if knobs else preset


def generate(out: str | Path, num_images: int, seed: int, image_size: int | None = None,
             val_fraction: float = 0.1, test_fraction: float = 0.1,
             preset: str | Preset | GridPreset = DEFAULT_PRESET, knobs: dict | None = None) -> Path:
    """Write the images and ``dataset_synthetic.json``; returns the JSON path. Same arguments -> same files.

    ``image_size`` (default: the preset's) and ``knobs`` override its fields (see ``Preset`` and ``GridPreset``)."""
    preset = resolve_preset(preset, image_size, knobs)
    if num_images < 1:
        raise ValueError(f"need num_images >= 1, got {num_images}")
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    num_val, num_test = round(num_images * val_fraction), round(num_images * test_fraction)
    num_train = num_images - num_val - num_test
    entries, sentence_id = [], 0
    # One RNG per image, so any prefix of a larger run is identical. The default preset keeps the original seeds.
    tag = "synthetic" if preset.name == DEFAULT_PRESET else f"synthetic-{preset.name}"
    for index in range(num_images):
        rng = random.Random(f"{tag}-{seed}-{index}")
        scene = sample_scene(rng, preset)
        filename = f"{index:06d}.jpg"
        if preset.bad_file_fraction and rng.random() < preset.bad_file_fraction:
            _corrupt_jpeg(out / "images" / filename, rng)
        else:
            draw_scene(scene, preset, noise_seed=rng.getrandbits(32) if preset.noise else 0).save(
                out / "images" / filename, "JPEG", quality=95)
        split = "train" if index < num_train else "val" if index < num_train + num_val else "test"
        sentences = []
        for raw in describe(scene, preset, rng):
            sentences.append({"tokens": tokenize(raw), "raw": raw, "imgid": index, "sentid": sentence_id})
            sentence_id += 1
        entries.append({"filepath": "images", "filename": filename, "imgid": index, "split": split,
                        "sentids": [s["sentid"] for s in sentences], "sentences": sentences, "scene": scene})
    path = out / JSON_NAME
    partial = out / f".{JSON_NAME}.partial"
    partial.write_text(json.dumps({"dataset": "synthetic", "images": entries}) + "\n", encoding="utf-8")
    os.replace(partial, path)
    return path
