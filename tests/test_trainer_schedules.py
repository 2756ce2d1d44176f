"""trainer.training.schedules against hand-computed values."""
import math

import pytest

from trainer.config.sections import ScheduleConfig, TeacherForcingConfig
from trainer.training.schedules import lr_multiplier, teacher_forcing_ratio


def test_warmup_then_cosine():
    config = ScheduleConfig(name="cosine", warmup_steps=4, min_lr_ratio=0.1)
    assert [lr_multiplier(s, 14, config) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_multiplier(4, 14, config) == pytest.approx(1.0)
    assert lr_multiplier(9, 14, config) == pytest.approx(0.1 + 0.9 * 0.5)  # halfway through 10 cosine steps
    assert lr_multiplier(14, 14, config) == pytest.approx(0.1)
    assert lr_multiplier(50, 14, config) == pytest.approx(0.1)


def test_step_and_constant():
    step = ScheduleConfig(name="step", warmup_steps=2, step_size=3, gamma=0.5)
    assert [lr_multiplier(s, 100, step) for s in range(9)] == [0.5, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25]
    assert lr_multiplier(123, 10, ScheduleConfig(name="constant")) == 1.0


def test_wsd_in_a_run_shorter_than_warmup_and_decay_decays_after_warmup():
    wsd = ScheduleConfig(name="wsd", warmup_steps=2, decay_steps=250, min_lr_ratio=0.2)
    assert lr_multiplier(1, 6, wsd) == 1.0 and lr_multiplier(4, 6, wsd) == pytest.approx(0.2 + 0.8 * 0.5)
    assert lr_multiplier(6, 6, wsd) == pytest.approx(0.2)


def test_wsd_is_constant_then_a_cosine_decay_ending_at_the_end():
    wsd = ScheduleConfig(name="wsd", warmup_steps=2, decay_steps=4, min_lr_ratio=0.2)
    assert [lr_multiplier(s, 10, wsd) for s in range(7)] == [0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]  # decay from 6
    assert lr_multiplier(8, 10, wsd) == pytest.approx(0.2 + 0.8 * 0.5)  # halfway through the 4 decay steps
    assert lr_multiplier(10, 10, wsd) == pytest.approx(0.2) == lr_multiplier(12, 10, wsd)
    assert [lr_multiplier(s, 10, wsd, end=7) for s in range(2, 8)] == pytest.approx(
        [1.0, 1.0, 0.2 + 0.8 * 0.5 * (1 + math.cos(math.pi / 4)), 0.6, 0.2 + 0.8 * 0.5 * (1 + math.cos(3 * math.pi / 4)),
         0.2])  # an end decided earlier: the decay moves with it
    cosine = ScheduleConfig(name="cosine", warmup_steps=2, min_lr_ratio=0.2)
    assert [lr_multiplier(s, 10, cosine, end=5) for s in range(12)] == [lr_multiplier(s, 10, cosine) for s in range(12)]


def test_teacher_forcing_schedules_match_bengio_2015():
    linear = TeacherForcingConfig(schedule="linear", start=1.0, floor=0.25, decay=0.1)
    assert [teacher_forcing_ratio(i, linear) for i in (0, 1, 5, 7, 8, 100)] == pytest.approx(
        [1.0, 0.9, 0.5, 0.3, 0.25, 0.25])
    exponential = TeacherForcingConfig(schedule="exponential", start=1.0, floor=0.1, k=0.9)
    assert [teacher_forcing_ratio(i, exponential) for i in (0, 1, 2, 10, 50)] == pytest.approx(
        [1.0, 0.9, 0.81, 0.3486784401, 0.1])
    inverse = TeacherForcingConfig(schedule="inverse_sigmoid", start=1.0, floor=0.05, k=10.0)
    assert teacher_forcing_ratio(0, inverse) == pytest.approx(10 / 11)
    assert teacher_forcing_ratio(10, inverse) == pytest.approx(10 / (10 + math.e))
    assert teacher_forcing_ratio(100, inverse) == pytest.approx(max(0.05, 10 / (10 + math.exp(10))))
    assert teacher_forcing_ratio(10**6, inverse) == 0.05
    assert teacher_forcing_ratio(99, TeacherForcingConfig(schedule="constant", start=0.75)) == 0.75
