"""Captions of a grid scene, composed from its facts: an inventory with counts, relations between two objects, two
neighbours, one object between two others, a full row or column, one object's position.

Only objects whose look is unique in the scene are named alone ("a red square ... a blue circle"), so every relation
and position said is the drawn one; the inventory names every object with its count. Synonyms are picked per mention.
"""
from __future__ import annotations

import random
from collections import Counter
from itertools import combinations, groupby

from .grid_presets import CELL_NAMES, GRID, NUMBER_WORDS, TEMPLATE_FIELDS, GridPreset, plural


def _look_key(shape: dict, preset: GridPreset) -> tuple[str, str, str, str]:
    """What captions say of a shape: (size word or "", texture, colour, shape)."""
    return shape["size_word"] if len(preset.sizes) > 1 else "", shape["texture"], shape["colour"], shape["shape"]


class _Speaker:
    """Words for one scene's captions: synonyms, noun phrases, lists, templates filled with fresh wording."""

    def __init__(self, preset: GridPreset, rng: random.Random):
        self.preset, self.rng = preset, rng

    def say(self, phrase: str) -> str:
        options = (phrase, *self.preset.synonyms.get(phrase, ()))
        return options[self.rng.randrange(len(options))] if len(options) > 1 else phrase

    def noun(self, key: tuple[str, str, str, str], count: int = 1) -> str:
        """ "a small striped red square", "two blue circles"."""
        size, texture, colour, shape = key
        words = [NUMBER_WORDS[count] if count > 1 else "a"]
        words += [self.say(word) for word in (size, "" if texture == "solid" else texture, colour) if word]
        noun = self.say(self.preset.shape_word(shape))
        return " ".join([*words, plural(noun) if count > 1 else noun])

    def join(self, parts: list[str]) -> str:
        return parts[0] if len(parts) == 1 else self.preset.list_separator.join(parts[:-1]) + " and " + parts[-1]

    def fill(self, kind: str, **makers) -> list[str]:
        """Every template of ``kind``, each filled by calling the makers anew (so synonyms vary between them)."""
        return [template.format(**{name: make() for name, make in makers.items()})
                for template in self.preset.templates[kind]]


def _candidates(scene: dict, preset: GridPreset, speaker: _Speaker) -> dict[str, list[str]]:
    """Every caption the templates give for this scene, by kind (kinds with no fact in the scene are empty)."""
    shapes = scene["shapes"]
    keys = [_look_key(shape, preset) for shape in shapes]
    counts = Counter(keys)
    groups = list(dict.fromkeys(keys))  # in reading order of their first object
    by_cell = {tuple(shape["cell"]): index for index, shape in enumerate(shapes)}
    unique = [index for index, key in enumerate(keys) if counts[key] == 1]

    def one(index: int):
        return lambda: speaker.noun(keys[index])

    total = f"{NUMBER_WORDS[len(shapes)]} {preset.object_word if len(shapes) == 1 else plural(preset.object_word)}"
    pools = {kind: [] for kind in TEMPLATE_FIELDS}
    pools["list"] = speaker.fill("list", list=lambda: speaker.join([speaker.noun(k, counts[k]) for k in groups]),
                                 be=lambda: "is" if counts[groups[0]] == 1 else "are", total=lambda: total)
    for first, second in combinations(unique, 2):  # first comes before second in reading order
        (row, column), (other_row, other_column) = shapes[first]["cell"], shapes[second]["cell"]
        if row != other_row and column != other_column:
            continue
        relation, inverse = ("left", "right") if row == other_row else ("above", "below")
        pools["pair"] += speaker.fill("pair", a=one(first), b=one(second),
                                      rel=lambda: speaker.say(preset.relations[relation]),
                                      inv=lambda: speaker.say(preset.relations[inverse]))
        if row == other_row and other_column == column + 1:
            pools["adjacent"] += speaker.fill("adjacent", a=one(first), b=one(second))
    lines = [("row", [(index, column) for column in range(GRID)]) for index in range(GRID)]
    lines += [("column", [(row, index) for row in range(GRID)]) for index in range(GRID)]
    for orientation, cells in lines:
        if not all(cell in by_cell for cell in cells):
            continue
        start, middle, end = (by_cell[cell] for cell in cells)
        runs = [(key, len(list(run))) for key, run in groupby(keys[index] for index in (start, middle, end))]
        pools["line"] += speaker.fill("line", line=lambda: orientation,  # "two red squares and a blue circle"
                                      items=lambda: speaker.join([speaker.noun(key, count) for key, count in runs]))
        if middle in unique:
            pools["between"] += speaker.fill("between", middle=one(middle), ends=lambda: speaker.noun(keys[start], 2)
                                             if keys[start] == keys[end]
                                             else speaker.join([speaker.noun(keys[start]), speaker.noun(keys[end])]))
    for index in unique:
        row, column = shapes[index]["cell"]
        pools["position"] += speaker.fill("position", a=one(index),
                                          where=lambda: speaker.say(preset.positions[CELL_NAMES[row][column]]))
    return pools


def grid_captions(scene: dict, preset: GridPreset, rng: random.Random) -> list[str]:
    """``preset.captions_per_image`` different captions (lower case, unfinished): first an inventory, then one of each
    kind in turn (the relational kinds in a random order, then positions, then other inventories), of at most
    ``max_words`` words while there are enough of those."""
    pools = _candidates(scene, preset, _Speaker(preset, rng))
    short = {kind: [text for text in dict.fromkeys(texts) if len(text.split()) <= preset.max_words]
             for kind, texts in pools.items()}
    chosen = [rng.choice(short["list"] or sorted(pools["list"], key=lambda text: len(text.split()))[:1])]
    kinds = [kind for kind in ("pair", "adjacent", "between", "line") if short[kind]]
    rng.shuffle(kinds)
    kinds += [kind for kind in ("position", "list") if short[kind]]
    wanted = preset.captions_per_image
    while len(chosen) < wanted and any(short[kind] for kind in kinds):
        for kind in kinds:
            if short[kind] and len(chosen) < wanted:
                text = short[kind].pop(rng.randrange(len(short[kind])))
                if text not in chosen:
                    chosen.append(text)
    if len(chosen) < wanted:  # too few short ones: the shortest of the others
        others = sorted({text for texts in pools.values() for text in texts} - set(chosen),
                        key=lambda text: (len(text.split()), text))
        chosen += others[:wanted - len(chosen)]
    return chosen
