"""Optimizer and learning-rate schedule factories."""

from __future__ import annotations

import math

import torch


def build_optimizer(config, parameters) -> torch.optim.Optimizer:
    """adam (AdamW when weight_decay > 0), sgd (with momentum) or rmsprop, from a config."""
    parameters = [p for p in parameters if p.requires_grad]
    lr = config.learning_rate
    if config.optimizer == "adam":
        # fused kernels exist on CPU and CUDA in torch >= 2.4 and save a few % per step
        fused = {"fused": True} if _fused_adam_available(parameters) else {}
        return torch.optim.AdamW(
            parameters,
            lr=lr,
            betas=tuple(config.adam_betas),
            weight_decay=config.weight_decay,
            **fused,
        )
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            parameters, lr=lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(
            parameters, lr=lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
    raise ValueError(f"unknown optimizer {config.optimizer!r} (adam, sgd, rmsprop)")


def _fused_adam_available(parameters) -> bool:
    version = tuple(int(x) for x in torch.__version__.split("+")[0].split(".")[:2])
    devices = {p.device.type for p in parameters}
    return version >= (2, 4) and devices <= {"cpu", "cuda"} and len(devices) == 1


class LearningRateSchedule:
    """Linear warmup, then constant, plateau decay, cosine decay, a linear tail, or inverse
    square root.

    ``plateau`` multiplies the rate by ``lr_decay_factor`` after ``lr_patience`` evaluations
    without a better dev metric. ``cosine`` anneals over the training budget: the fraction of
    ``max_steps`` done or, when only ``max_minutes`` is set, the fraction of the time budget
    used (so a 30-minute run ends annealed whatever the machine's speed; such a run is not
    bit-for-bit repeatable, since the rate depends on time). ``linear_tail`` holds the peak
    rate and decays linearly to the floor over the last ``decay_fraction`` of the same budget
    (warmup-stable-decay: most of the run at the rate that learns fastest, then the drop that
    settles the model). The rate never goes below
    ``min_learning_rate``. State is a small dict saved in checkpoints, so a resumed run
    continues the same schedule.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, config):
        self.optimizer = optimizer
        self.kind = config.lr_schedule
        self.base = config.learning_rate
        self.warmup = config.warmup_steps
        self.floor = config.min_learning_rate
        self.decay_factor = config.lr_decay_factor
        self.patience = config.lr_patience
        self.max_steps = config.max_steps
        self.max_seconds = config.max_minutes * 60
        self.decay_fraction = config.decay_fraction
        self.scale = 1.0  # plateau decays accumulate here
        self.bad_evaluations = 0
        if self.kind in ("cosine", "linear_tail") and not (self.max_steps or self.max_seconds):
            raise ValueError(f"lr_schedule {self.kind} needs a budget: max_steps or max_minutes")
        if self.kind == "linear_tail" and not 0 < self.decay_fraction <= 1:
            raise ValueError(f"decay_fraction must be in (0, 1], got {self.decay_fraction}")

    def rate(self, step: int, elapsed: float = 0.0) -> float:
        """Learning rate for update number ``step`` (1-based), ``elapsed`` training seconds in."""
        warm = min(1.0, step / self.warmup) if self.warmup else 1.0
        if self.kind in ("cosine", "linear_tail"):
            if self.max_steps:
                after = max(0, step - self.warmup)
                progress = after / max(1, self.max_steps - self.warmup)
            else:
                progress = elapsed / self.max_seconds
            progress = min(1.0, progress)
            if self.kind == "cosine":
                share = 0.5 * (1 + math.cos(math.pi * progress))
            else:
                share = min(1.0, (1.0 - progress) / self.decay_fraction)
            rate = self.floor + (self.base - self.floor) * share
        elif self.kind == "inverse_sqrt":
            rate = self.base * math.sqrt(max(self.warmup, 1) / max(step, self.warmup, 1))
        else:
            rate = self.base * self.scale
        return rate * warm if step < self.warmup else max(self.floor, rate)

    def step(self, step: int, elapsed: float = 0.0) -> float:
        rate = self.rate(step, elapsed)
        for group in self.optimizer.param_groups:
            group["lr"] = rate
        return rate

    def report(self, improved: bool) -> bool:
        """Tell the schedule whether the last evaluation improved; True if the rate decayed."""
        if self.kind != "plateau":
            return False
        if improved:
            self.bad_evaluations = 0
            return False
        self.bad_evaluations += 1
        if self.bad_evaluations > self.patience and self.base * self.scale > self.floor:
            self.scale *= self.decay_factor
            self.bad_evaluations = 0
            return True
        return False

    def state_dict(self) -> dict:
        return {"scale": self.scale, "bad_evaluations": self.bad_evaluations}

    def load_state_dict(self, state: dict) -> None:
        self.scale = state["scale"]
        self.bad_evaluations = state["bad_evaluations"]
