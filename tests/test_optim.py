"""seq2seq/optim.py: the optimizers a config names, and every learning-rate schedule's shape."""

from __future__ import annotations

import math

import pytest
import torch

from seq2seq.core.config import TrainingConfig, update_config
from seq2seq.core.optim import LearningRateSchedule, build_optimizer


def schedule(**settings) -> LearningRateSchedule:
    config = update_config(TrainingConfig(), settings, "test")
    parameter = torch.nn.Parameter(torch.zeros(3))
    return LearningRateSchedule(build_optimizer(config, [parameter]), config)


def test_warmup_is_linear_then_constant():
    s = schedule(lr_schedule="constant", learning_rate=1e-3, warmup_steps=10)
    assert s.rate(1) == pytest.approx(1e-4)
    assert s.rate(5) == pytest.approx(5e-4)
    assert s.rate(10) == s.rate(1000) == pytest.approx(1e-3)


def test_plateau_decays_after_patience_and_stops_at_the_floor():
    s = schedule(
        lr_schedule="plateau",
        learning_rate=1e-3,
        lr_patience=1,
        lr_decay_factor=0.5,
        min_learning_rate=3e-4,
    )
    assert not s.report(improved=False)  # one bad evaluation is within patience
    assert s.report(improved=False)
    assert s.rate(100) == pytest.approx(5e-4)
    assert not s.report(improved=True)
    s.report(improved=False)
    s.report(improved=False)
    assert s.rate(100) == pytest.approx(3e-4)  # 2.5e-4 would be below the floor
    copy = schedule(lr_schedule="plateau", learning_rate=1e-3, min_learning_rate=3e-4)
    copy.load_state_dict(s.state_dict())
    assert copy.rate(100) == s.rate(100)


def test_cosine_anneals_over_steps_or_over_time():
    by_steps = schedule(
        lr_schedule="cosine", learning_rate=1e-3, min_learning_rate=1e-5, max_steps=100
    )
    assert by_steps.rate(1) == pytest.approx(1e-3, rel=1e-3)
    assert by_steps.rate(50) == pytest.approx(
        1e-5 + (1e-3 - 1e-5) * 0.5 * (1 + math.cos(0.5 * math.pi)), rel=1e-2
    )
    assert by_steps.rate(100) == pytest.approx(1e-5)
    by_time = schedule(
        lr_schedule="cosine", learning_rate=1e-3, min_learning_rate=1e-5, max_minutes=10
    )
    assert by_time.rate(7, elapsed=0.0) == pytest.approx(1e-3)
    assert by_time.rate(7, elapsed=300.0) == pytest.approx((1e-3 + 1e-5) / 2)
    assert by_time.rate(7, elapsed=600.0) == by_time.rate(7, elapsed=900.0) == pytest.approx(1e-5)


def test_linear_tail_holds_the_peak_then_decays_linearly_to_the_floor():
    s = schedule(
        lr_schedule="linear_tail",
        learning_rate=1e-3,
        min_learning_rate=1e-5,
        max_minutes=10,
        decay_fraction=0.25,
    )
    for seconds in (0.0, 200.0, 449.0):
        assert s.rate(5, elapsed=seconds) == pytest.approx(1e-3, rel=1e-2)
    assert s.rate(5, elapsed=525.0) == pytest.approx(1e-5 + (1e-3 - 1e-5) / 2)
    assert s.rate(5, elapsed=600.0) == pytest.approx(1e-5)
    by_steps = schedule(lr_schedule="linear_tail", learning_rate=1e-3, max_steps=100)
    assert by_steps.rate(80) == pytest.approx(1e-3)
    assert by_steps.rate(90) < 1e-3 and by_steps.rate(100) == pytest.approx(1e-5)


@pytest.mark.parametrize("kind", ["cosine", "linear_tail"])
def test_budgeted_schedules_need_a_budget(kind):
    with pytest.raises(ValueError, match=f"lr_schedule {kind} needs a budget"):
        schedule(lr_schedule=kind)


def test_decay_fraction_must_be_a_share():
    with pytest.raises(ValueError, match="decay_fraction must be in"):
        schedule(lr_schedule="linear_tail", max_steps=10, decay_fraction=0.0)


def test_inverse_sqrt_decays_after_warmup():
    s = schedule(lr_schedule="inverse_sqrt", learning_rate=1e-3, warmup_steps=100)
    assert s.rate(100) == pytest.approx(1e-3)
    assert s.rate(400) == pytest.approx(5e-4)


def test_step_sets_the_rate_of_every_parameter_group():
    s = schedule(lr_schedule="constant", learning_rate=2e-3, warmup_steps=4)
    assert s.step(2) == pytest.approx(1e-3)
    assert all(g["lr"] == pytest.approx(1e-3) for g in s.optimizer.param_groups)


@pytest.mark.parametrize(
    "name, kind",
    [("adam", torch.optim.AdamW), ("sgd", torch.optim.SGD), ("rmsprop", torch.optim.RMSprop)],
)
def test_build_optimizer_names_the_optimizer_and_its_settings(name, kind):
    config = update_config(TrainingConfig(), {"optimizer": name, "weight_decay": 0.01}, "test")
    frozen = torch.nn.Parameter(torch.zeros(2), requires_grad=False)
    trained = torch.nn.Parameter(torch.zeros(2))
    optimizer = build_optimizer(config, [frozen, trained])
    assert isinstance(optimizer, kind)
    assert optimizer.param_groups[0]["params"] == [trained]  # frozen parameters are left out
    assert optimizer.param_groups[0]["weight_decay"] == 0.01
