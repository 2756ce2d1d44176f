"""trainer.baselines: the blind caption is the most frequent training caption; the human row scores ref 0 vs the rest;
the best reference is each image's highest-scoring reference, and a results file's gap to it splits in two."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge

from trainer.evaluation.caption_baselines import caption_baselines, split_captions


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


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    tmp_path = tmp_path_factory.mktemp("baselines")
    dataset = _karpathy(tmp_path)
    subprocess.run([sys.executable, "-m", "data_pipelines.prepare", "karpathy", "--json", str(dataset), "--out",
                    str(tmp_path / "prep"), "--image-size", "16", "--min-word-freq", "1", "--workers", "1"],
                   check=True, cwd=REPO, capture_output=True)
    return tmp_path / "prep"


def test_blind_and_human_rows(prepared):
    result = caption_baselines(prepared, "test")
    assert result["blind_caption"] == "a red circle"  # 4 of the 8 training captions tokenize to it
    references = split_captions(prepared, "test")
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
        caption_baselines(prepared, "dev")


def test_best_reference_and_the_gap_of_results(prepared, tmp_path):
    test_refs = {"test0": ["a blue square", "a blue box", "blue square"], "test1": ["a red circle", "a red disc", "circle"]}
    per_reference = [Cider().compute_score(test_refs, {i: [refs[k]] for i, refs in test_refs.items()})[1]
                     for k in range(3)]  # pycocoevalcap's per-image CIDEr-D of every image's k-th reference
    best = {image_id: max(range(3), key=lambda k: per_reference[k][n]) for n, image_id in enumerate(test_refs)}
    results = tmp_path / "results.json"  # test0: a reference that is not the best one; test1: none of them
    other0 = next(k for k in range(3) if k != best["test0"])
    results.write_text(json.dumps([{"image_id": "test0", "caption": test_refs["test0"][other0].upper() + "."},
                                   {"image_id": "test1", "caption": "a red square"}]))
    result = caption_baselines(prepared, "test", [results])
    expected_best = coco_scores({i: test_refs[i][k] for i, k in best.items()}, test_refs)
    assert result["best_reference"]["CIDEr"] == pytest.approx(expected_best["CIDEr"], abs=1e-9)
    model = Cider().compute_score(test_refs, {"test0": [test_refs["test0"][other0]], "test1": ["a red square"]})[1]
    ceiling = [per_reference[best[i]][n] for n, i in enumerate(test_refs)]
    gap = result["results"][str(results)]
    assert gap["CIDEr"] == pytest.approx(model.mean(), abs=1e-9)
    assert gap["share_of_captions_that_are_references"] == 0.5
    assert gap["gap_on_references"] == pytest.approx((ceiling[0] - model[0]) / 2, abs=1e-9) and gap["gap_on_references"] > 0
    assert gap["gap_on_other_captions"] == pytest.approx((ceiling[1] - model[1]) / 2, abs=1e-9)
    results.write_text(json.dumps([{"image_id": "test0", "caption": "a square"}]))
    with pytest.raises(ValueError, match="no caption for 1 test images"):
        caption_baselines(prepared, "test", [results])
    for text, problem in (("[{", "is not JSON"), ('{"test0": "a square"}', "is not a COCO results list"),
                          ('[{"image_id": "test0"}]', "is not a COCO results list")):
        results.write_text(text)
        with pytest.raises(ValueError, match=f"{results}.* {problem}"):
            caption_baselines(prepared, "test", [results])
