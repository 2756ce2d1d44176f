"""Offline demo dataset: drawn scenes of one or two coloured shapes, five human-style captions each, Karpathy JSON.

``python -m data_pipelines.synthetic --out DIR --num-images N --seed S [--image-size 128]`` writes
``DIR/images/NNNNNN.jpg`` and ``DIR/dataset_synthetic.json`` (splits 80/10/10), ready for
``python -m data_pipelines.prepare karpathy --json DIR/dataset_synthetic.json --images DIR``.

The grammar is deliberately small (about 25 words) and the five captions are paraphrases sharing most n-grams, so a
decoder on frozen (even random) ResNet-50 features can learn it in minutes; the content (5 colours x 3 shapes x
layout x size) varies enough that one caption for every image scores far lower.
"""
from __future__ import annotations

import argparse
import json
import os
import random
from pathlib import Path

from PIL import Image, ImageDraw

from .vocab import tokenize

COLOURS = {"red": (215, 30, 40), "green": (40, 160, 60), "blue": (40, 80, 215), "yellow": (240, 200, 30),
           "purple": (140, 60, 170)}
SHAPES = ("circle", "square", "triangle")
BACKGROUND = (255, 255, 255)
TWO_SHAPE_PROBABILITY = 0.75
# layout -> (relation of the first shape to the second, its inverse, the short form)
RELATIONS = {"horizontal": ("to the left of", "to the right of", "left of"),
             "vertical": ("above", "below", "above")}


def _shape(rng: random.Random) -> dict:
    return {"colour": rng.choice(sorted(COLOURS)), "shape": rng.choice(SHAPES)}


def sample_scene(rng: random.Random, image_size: int) -> dict:
    """A scene: 1 shape (small or large, anywhere it fits) or 2 shapes side by side / one above the other.

    Shapes are ``{"colour", "shape", "size" (px), "centre": [x, y]}``; the first of two is the left or top one."""
    jitter = 0.06 * image_size
    if rng.random() >= TWO_SHAPE_PROBABILITY:
        size_word = rng.choice(("small", "large"))
        size = rng.uniform(0.24, 0.32) if size_word == "small" else rng.uniform(0.5, 0.62)
        size *= image_size
        low, high = size / 2 + 4, image_size - size / 2 - 4
        centre = [rng.uniform(low, high), rng.uniform(low, high)]
        return {"layout": "single", "size_word": size_word, "shapes": [{**_shape(rng), "size": size, "centre": centre}]}
    layout = rng.choice(sorted(RELATIONS))
    shapes = []
    for half in (0.25, 0.75):
        along, across = half * image_size + rng.uniform(-jitter, jitter), image_size / 2 + rng.uniform(-jitter, jitter)
        centre = [along, across] if layout == "horizontal" else [across, along]
        shapes.append({**_shape(rng), "size": rng.uniform(0.3, 0.4) * image_size, "centre": centre})
    return {"layout": layout, "shapes": shapes}


def draw_scene(scene: dict, image_size: int) -> Image.Image:
    """Render the scene on a plain background."""
    image = Image.new("RGB", (image_size, image_size), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for shape in scene["shapes"]:
        (x, y), half, fill = shape["centre"], shape["size"] / 2, COLOURS[shape["colour"]]
        if shape["shape"] == "circle":
            draw.ellipse([x - half, y - half, x + half, y + half], fill=fill)
        elif shape["shape"] == "square":
            draw.rectangle([x - half, y - half, x + half, y + half], fill=fill)
        else:
            draw.polygon([(x, y - half), (x - half, y + half), (x + half, y + half)], fill=fill)
    return image


def describe(scene: dict) -> list[str]:
    """Five differently worded captions of the scene (template paraphrases, capitalised and punctuated)."""
    if scene["layout"] == "single":
        shape = scene["shapes"][0]
        thing = f"{scene['size_word']} {shape['colour']} {shape['shape']}"
        return [f"A {thing}.", f"There is a {thing}.", f"A {thing} on a plain background.",
                f"The picture shows a {thing}.", f"A single {thing}."]
    first, second = (f"{shape['colour']} {shape['shape']}" for shape in scene["shapes"])
    relation, inverse, short = RELATIONS[scene["layout"]]
    return [f"A {first} {relation} a {second}.", f"There is a {first} {relation} a {second}.",
            f"A {first} is {short} a {second}.", f"A {second} {inverse} a {first}.",
            f"The {first} is {relation} the {second}."]


def generate(out: str | Path, num_images: int, seed: int, image_size: int = 128,
             val_fraction: float = 0.1, test_fraction: float = 0.1) -> Path:
    """Write the images and ``dataset_synthetic.json``; returns the JSON path. Same arguments -> same files."""
    if num_images < 1 or image_size < 32:
        raise ValueError(f"need num_images >= 1 and image_size >= 32, got {num_images} and {image_size}")
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    num_val, num_test = round(num_images * val_fraction), round(num_images * test_fraction)
    num_train = num_images - num_val - num_test
    entries, sentence_id = [], 0
    for index in range(num_images):
        rng = random.Random(f"synthetic-{seed}-{index}")  # per image, so any prefix of a larger run is identical
        scene = sample_scene(rng, image_size)
        filename = f"{index:06d}.jpg"
        draw_scene(scene, image_size).save(out / "images" / filename, "JPEG", quality=95)
        split = "train" if index < num_train else "val" if index < num_train + num_val else "test"
        sentences = []
        for raw in describe(scene):
            sentences.append({"tokens": tokenize(raw), "raw": raw, "imgid": index, "sentid": sentence_id})
            sentence_id += 1
        entries.append({"filepath": "images", "filename": filename, "imgid": index, "split": split,
                        "sentids": [s["sentid"] for s in sentences], "sentences": sentences, "scene": scene})
    path = out / "dataset_synthetic.json"
    partial = out / ".dataset_synthetic.json.partial"
    partial.write_text(json.dumps({"dataset": "synthetic", "images": entries}) + "\n", encoding="utf-8")
    os.replace(partial, path)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m data_pipelines.synthetic", description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--num-images", required=True, type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--image-size", type=int, default=128, help="square image side in pixels (default 128)")
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument("--test-fraction", type=float, default=0.1)
    args = parser.parse_args(argv)
    path = generate(args.out, args.num_images, args.seed, args.image_size, args.val_fraction, args.test_fraction)
    print(f"wrote {args.num_images} images and {path}")


if __name__ == "__main__":
    main()
