"""One optimizer update over several batches and processes.

An update reads ``accumulate`` batches (micro-batches) on each process of the run. The loss
*sum* of each is back-propagated at once (its graph freed, so accumulating costs no memory);
the gradients stay on their process (``no_sync``) until the last micro-batch, whose backward
pass averages them over the processes (DistributedDataParallel). The trainer then sums the
update's statistics over the processes, the count of predictions the loss sums cover among them,
and :meth:`Updater.step` scales the gradients by processes / that global count: the gradient of
the mean loss over every prediction of the update, however the update was split. So N
processes with ``accumulate`` A take the same steps as one process with ``accumulate`` N x A, to
float rounding, as fairseq does. A dummy micro-batch (a real batch with zero weight, read so
that every process runs the same passes) adds zero gradient and no statistic. With fp16 the
gradients are unscaled before they are clipped; their norm is checked to be the same on every
process.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable

import torch
from torch.nn.parallel import DistributedDataParallel

from seq2seq.core.batching import UpdateBatches
from seq2seq.core.distributed import World

STAT_KEYS = ("loss_sum", "nll_sum", "targets", "throughput_tokens")


class TrainingPass(torch.nn.Module):
    """The task's training forward pass as a module, so that DistributedDataParallel wraps
    exactly what :meth:`Task.train_step` runs, whatever model methods it calls."""

    def __init__(self, task):
        super().__init__()
        self.model = task.model
        self.task = task

    def forward(self, batch) -> tuple[torch.Tensor, dict]:
        return self.task.train_step(batch)


class Updater:
    """Accumulates the gradients of an update's micro-batches (:meth:`backward`), then scales,
    clips and applies them (:meth:`step`)."""

    def __init__(self, task, optimizer, scaler, world: World, clip_grad_norm: float):
        self.optimizer = optimizer
        self.scaler = scaler
        self.world = world
        self.clip_grad_norm = clip_grad_norm
        self.parameters = [p for p in task.model.parameters() if p.requires_grad]
        forward = TrainingPass(task)
        if world.distributed:  # rank 0's weights are copied to every process here
            forward = DistributedDataParallel(forward)
        self.forward = forward

    def backward(self, update: UpdateBatches, autocast: Callable) -> dict:
        """Forward and backward passes of this process's micro-batches. Returns their summed
        statistics (:data:`STAT_KEYS`, dummies left out) and ``nonfinite``: how many gave a
        NaN or infinite loss, with ``bad_loss`` the last such value."""
        self.optimizer.zero_grad(set_to_none=True)
        sums = dict.fromkeys(STAT_KEYS, 0.0)
        nonfinite, bad_loss = 0, 0.0
        last = len(update.batches) - 1
        for index, (batch, real) in enumerate(zip(update.batches, update.real)):
            keep_local = self.world.distributed and index < last
            with self.forward.no_sync() if keep_local else contextlib.nullcontext():
                with autocast():
                    loss_sum, stats = self.forward(batch)
                value = float(loss_sum.detach())
                if not math.isfinite(value):
                    nonfinite, bad_loss = nonfinite + 1, value
                elif real:
                    for key in STAT_KEYS:
                        sums[key] += stats[key]
                if not real:
                    loss_sum = loss_sum * 0.0
                self.scaler.scale(loss_sum).backward()
        return {**sums, "nonfinite": nonfinite, "bad_loss": bad_loss}

    def step(self, global_targets: float) -> float:
        """Scale the gradients to the mean over ``global_targets`` predictions (every
        process's), unscale fp16 gradients, clip, step; returns the gradient norm (before
        clipping), which is checked to be equal on every process."""
        self.scaler.unscale_(self.optimizer)  # nothing to do without fp16
        gradients = [p.grad for p in self.parameters if p.grad is not None]
        if gradients:
            # DistributedDataParallel averaged the processes' sums: undo the 1 / processes
            torch._foreach_mul_(gradients, self.world.size / max(1.0, global_targets))
        limit = self.clip_grad_norm if self.clip_grad_norm > 0 else math.inf
        norm = float(torch.nn.utils.clip_grad_norm_(self.parameters, limit))
        self._check_same_gradients(norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return norm

    def _check_same_gradients(self, norm: float) -> None:
        if not self.world.distributed:
            return
        low, high = self.world.extremes(norm)
        if math.isfinite(high) and high - low > 1e-6 * max(1.0, high):
            raise RuntimeError(
                f"the gradients differ between processes (norms from {low:.6g} to {high:.6g}): "
                "a parameter that is not synchronised, or processes that diverged"
            )
