"""The Task protocol: what a model family gives the :class:`seq2seq.core.trainer.Trainer`."""

from __future__ import annotations

from typing import Protocol

import torch


class Task(Protocol):
    """What a model family gives the trainer.

    Optional: ``rank_batches(epoch, rank, processes) -> list``, the batches process ``rank`` of
    ``processes`` reads, for a task that splits its data between the processes itself (every
    process must get as many; a language model gives each its own contiguous rows). Without it
    each process takes its share of ``epoch_batches`` (:func:`seq2seq.core.batching.shard_batches`).
    """

    kind: str  # the checkpoint and bundle kind: "translation", "language_model", ...
    model: torch.nn.Module
    selection_metric: str  # the validation metric that picks best.pt and drives early stopping
    higher_is_better: bool

    def epoch_batches(self, epoch: int) -> list:
        """The batches of ``epoch``: a pure function of the seed and the epoch, so a resumed
        run rebuilds the same list and continues from its position."""
        ...

    def start_epoch(self, epoch: int) -> None: ...

    def train_step(self, batch) -> tuple[torch.Tensor, dict]:
        """Forward pass over one batch. Returns the loss *summed* over the batch's predictions
        (the trainer divides by their count, over every micro-batch and process of an update)
        and stats: ``loss_sum`` and ``nll_sum`` (floats), ``targets`` (how many predictions
        the sums cover: target tokens, texts, forecast steps) and ``throughput_tokens`` (units
        read, for the tokens/s figure)."""
        ...

    def evaluate(self) -> dict:
        """Scores on the validation data, ``selection_metric`` among them."""
        ...

    def checkpoint_extras(self) -> dict:
        """Plain data the family needs to rebuild the model for inference (tokenizers, ...)."""
        ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...
