"""best/ keeps the highest val CIDEr-D, and with eval.best_min_z only a validation whose per-image CIDEr-D beats the
run's first (its start) by that many standard errors of the paired difference (trainer.training.best_checkpoint)."""
import json
import logging
import math
import random

import pytest
from test_scst_trainer import NoStop, RecordingLog, set_up

from trainer.checkpointing.checkpoint import CheckpointError
from trainer.checkpointing.state_checks import check_trainer_state
from trainer.checkpointing.train_state import Progress
from trainer.training import loop as loop_module
from trainer.training.best_checkpoint import keeps_as_best, paired_z
from trainer.training.validation import ValidationResult

START = {"a": 1.0, "b": 1.0, "c": 1.0, "d": 1.0}
NOISY = {"a": 3.0, "b": 0.0, "c": 2.0, "d": 0.0}  # mean +0.25, sd 1.5: z = 0.25 / 0.75 = 0.33
CLEAR = {"a": 2.1, "b": 1.9, "c": 2.0, "d": 2.0}  # mean +1.0, sd 0.08: z = 24.5
BELOW_NOISY = {"a": 1.0, "b": 1.0, "c": 1.0, "d": 1.4}  # 1.1: above the kept start, below the noisy 1.25 seen


def mean(scores: dict) -> float:
    return sum(scores.values()) / len(scores)


def test_paired_z_is_the_mean_difference_in_standard_errors():
    assert paired_z(START, NOISY) == pytest.approx(0.25 / (1.5 / 2))
    assert paired_z(START, CLEAR) == pytest.approx(1.0 / (math.sqrt(0.02 / 3) / 2))
    assert paired_z(START, {key: 2.0 for key in START}) == math.inf
    assert paired_z(START, START) == 0.0
    assert paired_z(START, {"a": 1.0, "b": 1.0, "c": 1.0, "e": 1.0}) is None  # not the same images
    assert paired_z({"a": 1.0}, {"a": 2.0}) is None


def test_the_first_validation_is_the_reference_and_only_a_clear_gain_replaces_it():
    progress = Progress()
    assert keeps_as_best(progress, mean(START), START, 2.0) == (True, "")
    assert progress.reference_cider == START
    progress.best_cider, progress.best_step, progress.step = mean(START), 0, 25
    kept, why = keeps_as_best(progress, mean(NOISY), NOISY, 2.0)
    assert not kept and why == ("step 25: val CIDEr-D 1.2500 is above the best 1.0000 but not 2 standard errors above "
                                "the run's start (paired z 0.33); best/ stays at step 0")
    progress.step = 50
    assert keeps_as_best(progress, mean(CLEAR), CLEAR, 2.0) == (
        True, "step 50: best/ moves here (val CIDEr-D 2.0000; paired z 24.49; 2 validations in a row above the run's "
              "start, pooled z 1.60 x sqrt(2) = 2.26)")
    assert keeps_as_best(progress, 0.5, {key: 0.5 for key in START}, 2.0) == (False, "")  # lower: never
    assert progress.reference_cider == START  # the reference stays the start


def scripted_validations(gains: list[float], z_alone: float, seed: int = 0, images: int = 200) -> tuple[dict, list]:
    """A reference and one validation per relative gain in ``gains``: each image's score is the reference's plus the
    gain plus noise of its own per validation, scaled so that each validation alone has paired z ``z_alone``."""
    draw = random.Random(seed)
    reference = {f"img{i}": draw.uniform(0.5, 3.5) for i in range(images)}
    base = mean(reference)
    validations = []
    for gain in gains:
        noise = [draw.gauss(0.0, 1.0) for _ in reference]
        noise = [value - sum(noise) / images for value in noise]  # the gain is exact; the noise sets z alone
        spread = math.sqrt(sum(value * value for value in noise) / (images - 1))
        scale = abs(gain) * base / (z_alone * spread / math.sqrt(images))
        validations.append({key: score + gain * base + scale * value  # may go below 0: only differences count
                            for (key, score), value in zip(reference.items(), noise)})
    return reference, validations


def best_steps(reference: dict, validations: list, min_z: float = 2.0) -> list[int]:
    """best/'s step after each validation (the reference is step 0, validation k is step 25 * k)."""
    progress, steps = Progress(), []
    for step, scores in enumerate([reference, *validations]):
        progress.step = 25 * step
        if keeps_as_best(progress, mean(scores), scores, min_z)[0]:
            progress.best_cider, progress.best_step = mean(scores), progress.step
        steps.append(progress.best_step)
    return steps[1:]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ten_small_gains_in_a_row_move_best_though_none_would_alone(seed):
    """The round-3 SCST case on a 200-image val split: +2% to +11% at ten validations, each paired z about 1."""
    reference, validations = scripted_validations([0.02, 0.05, 0.04, 0.08, 0.03, 0.11, 0.06, 0.05, 0.07, 0.09],
                                                  z_alone=1.0, seed=seed)
    assert all(0.9 < paired_z(reference, scores) < 1.1 for scores in validations)
    assert best_steps(reference, validations, min_z=2.0)[-1] > 0
    assert best_steps(reference, validations[:1], min_z=2.0) == [0]  # the first of them alone: not enough


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_one_unconfirmed_spike_does_not_move_best(seed):
    """The round-3 ``scenes`` case: +6.4% on val at one validation (paired z 0.88), the later ones below the start
    (test said -10%); then small gains again, too few to confirm a new streak."""
    reference, validations = scripted_validations([0.064, -0.02, -0.05, -0.01, 0.03, 0.02], z_alone=0.88, seed=seed)
    assert best_steps(reference, validations) == [0] * 6


def test_a_gain_that_persists_is_kept_after_min_z_squared_over_z_squared_validations():
    """The same scores at every validation (paired z 1.01): pooling adds nothing, persistence does: kept at the
    fourth in a row for best_min_z 2, at the ninth for 3."""
    reference, validations = scripted_validations([0.05], z_alone=1.01)
    for min_z, kept_at in [(2.0, 4), (3.0, 9)]:
        progress = Progress()
        keeps_as_best(progress, mean(reference), reference, min_z)
        progress.best_cider, progress.best_step = mean(reference), 0
        verdicts = []
        for step in range(1, 10):
            progress.step = step
            verdicts.append(keeps_as_best(progress, mean(validations[0]), validations[0], min_z))
            if verdicts[-1][0]:
                break
        assert len(verdicts) == kept_at and not any(kept for kept, _ in verdicts[:-1])
    assert verdicts[-1][1].endswith("pooled z 1.01 x sqrt(9) = 3.03)")


def test_a_validation_at_or_below_the_start_ends_the_streak():
    progress = Progress()
    keeps_as_best(progress, mean(START), START, 2.0)
    progress.best_cider, progress.best_step = mean(START), 0
    keeps_as_best(progress, mean(NOISY), NOISY, 2.0)
    assert progress.streak_length == 1 and progress.streak_cider == NOISY
    assert keeps_as_best(progress, mean(START), START, 2.0) == (False, "")
    assert progress.streak_length == 0 and progress.streak_cider is None


def test_without_best_min_z_any_gain_counts_and_nothing_is_recorded():
    progress = Progress(best_cider=1.0, best_step=0)
    assert keeps_as_best(progress, mean(NOISY), NOISY, 0.0) == (True, "")
    assert progress.reference_cider is None


def test_another_val_split_becomes_the_reference():
    progress = Progress(best_cider=1.0, best_step=0, reference_cider=dict(START))
    other = {"x": 2.0, "y": 3.0}
    assert keeps_as_best(progress, 2.5, other, 2.0) == (True, "")
    assert progress.reference_cider == other


@pytest.mark.parametrize("key", ["reference_cider", "streak_cider"])
@pytest.mark.parametrize("reference", [{"a": -1.0}, {"a": "1.0"}, {"a": None}, [1.0]])
def test_a_checkpoint_with_bad_per_image_scores_is_refused(tmp_path, reference, key):
    state = {"format_version": 2, "step": 5, "epoch": 0, "world_size": 1, "rng": [{}], "scheduler": {"last_epoch": 5},
             "config_hash": "x", "train_config": {}, key: reference}
    with pytest.raises(CheckpointError, match=key):
        check_trainer_state(state, tmp_path / "trainer_state.json")


def test_the_loop_keeps_the_start_in_best_until_a_clear_gain(tiny_prepared, tmp_path, monkeypatch, caplog):
    """The loop's validations with scripted scores: start, a noisy gain (best/ stays), a lower one (no gain for
    eval.patience: it counts from the best seen, 1.25, not the best kept), a clear gain (best/ moves); the step
    checkpoints record the reference and the best seen, so that a resume decides the same."""
    scripted = iter([START, NOISY, BELOW_NOISY, CLEAR])

    def scripted_validate(*args):
        scores = next(scripted)
        return ValidationResult(metrics={"CIDEr": mean(scores)}, cider_per_image=scores, num_images=len(scores))

    monkeypatch.setattr(loop_module, "validate", scripted_validate)
    output = tmp_path / "run"
    loop = loop_module.TrainingLoop(set_up(tiny_prepared, output, "eval.best_min_z=2", "checkpoint.keep_last=4"),
                                    RecordingLog(), NoStop())
    caplog.set_level(logging.INFO, logger="trainer.train")
    best_steps, without_gain = [], []
    for step in (0, 1, 2, 3):
        loop.progress.step = step
        loop.checkpoint()
        loop.validate()
        best_steps.append(json.loads((output / "best" / "trainer_state.json").read_text())["step"])
        without_gain.append(loop.progress.evals_without_gain)
    assert best_steps == [0, 0, 0, 3] and without_gain == [0, 0, 1, 0]
    assert "step 1: val CIDEr-D 1.2500 is above the best 1.0000 but not 2 standard errors" in caplog.text
    checkpoint_state = json.loads((output / "checkpoints" / "step_00000002" / "trainer_state.json").read_text())
    assert checkpoint_state["reference_cider"] == START and checkpoint_state["best_step"] == 0
    assert checkpoint_state["best_seen_cider"] == 1.25 and checkpoint_state["evals_without_gain"] == 1
    assert checkpoint_state["streak_length"] == 2  # NOISY and BELOW_NOISY: above the start, pooled as sums
    assert checkpoint_state["streak_cider"] == {"a": 4.0, "b": 1.0, "c": 3.0, "d": 1.4}
