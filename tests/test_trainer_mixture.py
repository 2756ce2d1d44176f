"""Training on a weighted mixture of prepared datasets through the CLI: one vocabulary, the data order of a straight
run after a resume on another number of processes, per-source validation whose weighted mean picks best/, a changed
source refused on resume, and evaluation of the mixture's checkpoint on one source."""
import json

import pytest
from distributed_runs import PYTHON, logged, make_dataset, run, train

pytestmark = pytest.mark.slow
SAME_YAML = ["train.global_batch_size=8", "train.micro_batch_size=4", "train.max_steps=4", "eval.every_steps=2",
             "checkpoint.every_steps=2", "logging.image_ids=true", "teacher_forcing.schedule=linear",
             "teacher_forcing.decay=0.2", "teacher_forcing.floor=0.5"]
WEIGHTS = {"syna": 3.0, "synb": 1.0}


@pytest.fixture(scope="module")
def mixture(tmp_path_factory):
    """(overrides of a mixture run, the two sources' roots, the mixture's vocabulary file)."""
    base = tmp_path_factory.mktemp("mixture")
    roots = [make_dataset(base / "a"), make_dataset(base / "b", num_images=30, shard_size=3)]
    vocab = base / "vocab.json"
    run([PYTHON, "-m", "data_pipelines.prepare", "vocab", "--from", *map(str, roots), "--out", str(vocab),
         "--min-word-freq", "1"])
    sources = ", ".join(f"{{root: {root}, weight: {weight}, name: {name}}}"
                        for root, (name, weight) in zip(roots, WEIGHTS.items()))
    return ["data.root=", f"data.sources=[{sources}]", f"data.vocab={vocab}", *SAME_YAML], roots, vocab


def image_ids(output_dir):
    return {record["step"]: record["image_ids"]
            for record in map(json.loads, (output_dir / "image_ids.jsonl").read_text().splitlines())}


def test_mixture_runs_resume_on_any_world_size_and_validate_each_source(mixture, tmp_path):
    overrides, roots, vocab = mixture
    one, two, resumed = tmp_path / "one", tmp_path / "two", tmp_path / "resumed"
    train(roots[0], one, *overrides, processes=1)
    train(roots[0], two, *overrides, processes=2)
    train(roots[0], resumed, *overrides, "train.stop_at_step=2", processes=2)
    train(roots[0], resumed, *overrides, processes=1, resume="latest")
    ids = image_ids(one)
    assert ids == image_ids(two) == image_ids(resumed)  # 1 process x 2 lanes = 2 x 1 = a resume from step 2
    assert all(len(step) == 8 for step in ids.values())
    assert {image_id.split("/")[0] for step in ids.values() for image_id in step} == set(WEIGHTS)
    for step in (2, 4):
        record = logged(resumed)[step]
        per_source = {name: record[f"val/{name}/CIDEr"] for name in WEIGHTS}
        expected = sum(WEIGHTS[name] * cider for name, cider in per_source.items()) / sum(WEIGHTS.values())
        assert record["val/CIDEr"] == pytest.approx(expected)
    for step in (1, 2, 3, 4):  # the same images, so the same losses up to the order of the gradient sums
        assert logged(two)[step]["train/loss"] == pytest.approx(logged(one)[step]["train/loss"], abs=1e-5)
        assert logged(resumed)[step]["train/loss"] == pytest.approx(logged(one)[step]["train/loss"], abs=1e-5)
    state = json.loads((resumed / "best" / "trainer_state.json").read_text())
    assert state["best_cider"] == max(logged(resumed)[step]["val/CIDEr"] for step in (2, 4))
    assert (resumed / "best" / "vocab.json").read_text() == vocab.read_text()
    card = (resumed / "best" / "README.md").read_text()
    assert "### syna (weight 3.0)" in card and f"Prepared dataset `{roots[1]}`" in card

    changed = [item.replace("weight: 1.0", "weight: 2.0") for item in overrides]
    refused = train(roots[0], resumed, *changed, "train.max_steps=6", resume="latest", check=False, seconds=120)
    assert refused.returncode != 0 and "was trained on another dataset (data.sources [syna:" in refused.stderr

    evaluated = run([PYTHON, "-m", "trainer.evaluate_checkpoint", "--checkpoint", str(resumed / "best"), "--data",
                     str(roots[1]), "--split", "val", "--out", str(tmp_path / "results_b.json"), "--num-workers", "0"])
    assert "vocabulary" not in evaluated.stderr  # the mixture's vocabulary holds every word of the source
    assert len(json.loads((tmp_path / "results_b.json").read_text())) == 3
