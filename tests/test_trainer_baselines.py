"""trainer.baselines: the blind caption is the most frequent training caption; the human row scores ref 0 vs the rest."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge

from conftest import REPO
from trainer.baselines import caption_baselines, split_captions


def tokens(caption: str) -> str:
    return "".join(c for c in caption.lower() if c.isalnum() or c == " ").strip()


def coco_scores(predictions: dict, references: dict) -> dict:
    gts, res = references, {i: [caption] for i, caption in predictions.items()}
    bleu, _ = Bleu(4).compute_score(gts, res)
    return {**{f"Bleu_{n + 1}": bleu[n] for n in range(4)}, "CIDEr": Cider().compute_score(gts, res)[0],
            "ROUGE_L": Rouge().compute_score(gts, res)[0]}


def _karpathy(tmp_path: Path) -> Path:
    """4 train images (3 share the caption 'A red circle.'), 2 test images; 16 px PNGs."""
    from PIL import Image
    captions = {"train": [["A red circle.", "A red circle!"], ["a red circle", "A blue square."],
                          ["A red circle.", "Red circle."], ["A green triangle.", "A triangle."]],
                "test": [["A blue square.", "A blue box.", "Blue square."], ["A red circle.", "A red disc.", "Circle."]]}
    images = []
    for split, per_image in captions.items():
        for index, refs in enumerate(per_image):
            name = f"{split}{index}.png"
            Image.new("RGB", (16, 16), (index * 40, 0, 0)).save(tmp_path / name)
            images.append({"filename": name, "split": split, "sentences": [{"raw": raw} for raw in refs]})
    path = tmp_path / "dataset.json"
    path.write_text(json.dumps({"images": images}))
    return path


def test_blind_and_human_rows(tmp_path):
    dataset = _karpathy(tmp_path)
    subprocess.run([sys.executable, "-m", "data_pipelines.prepare", "karpathy", "--json", str(dataset), "--out",
                    str(tmp_path / "prep"), "--image-size", "16", "--min-word-freq", "1", "--workers", "1"],
                   check=True, cwd=REPO, capture_output=True)
    result = caption_baselines(tmp_path / "prep", "test")
    assert result["blind_caption"] == "a red circle"  # 4 of the 8 training captions tokenize to it
    references = split_captions(tmp_path / "prep", "test")
    assert sorted(map(len, references.values())) == [3, 3]
    # Independently: pycocoevalcap 1.2's scorers on captions tokenized by hand (lower case, no punctuation).
    test_refs = {"test0": ["a blue square", "a blue box", "blue square"], "test1": ["a red circle", "a red disc", "circle"]}
    assert {i: [tokens(r) for r in refs] for i, refs in references.items()} == test_refs
    expected_blind = coco_scores({i: "a red circle" for i in test_refs}, test_refs)
    expected_human = coco_scores({i: refs[0] for i, refs in test_refs.items()}, {i: refs[1:] for i, refs in test_refs.items()})
    for name, value in expected_blind.items():
        assert result["blind"][name] == pytest.approx(value, abs=1e-9), name
    for name, value in expected_human.items():
        assert result["human"][name] == pytest.approx(value, abs=1e-9), name
    with pytest.raises(ValueError, match="no split 'dev'"):
        caption_baselines(tmp_path / "prep", "dev")
