"""Batches for training: token-based batches with length bucketing, padding, and each
process's share of an epoch's batches.

Batches are lists of example indices fixed by (seed, epoch), so a resumed run rebuilds exactly
the batches it had and continues from the next one. Under data-parallel training every process
builds the same list and takes its share of it as fairseq does (:func:`shard_batches`). numpy
only.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np


def token_batches(
    lengths: np.ndarray,
    batch_tokens: int,
    seed: int,
    epoch: int,
    pool_batches: int = 64,
    shuffle: bool = True,
) -> list[np.ndarray]:
    """Group example indices into batches of at most ``batch_tokens`` padded tokens.

    ``lengths``: [examples] the padded-size-determining length of each example (for
    translation, max(source, target) tokens). Examples are shuffled, cut into pools of about
    ``pool_batches`` batches, sorted by length within a pool (so a batch holds similar lengths
    and little padding), batched, and the batches shuffled. Deterministic in (seed, epoch).
    """
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths)) if shuffle else np.arange(len(lengths))
    mean_length = max(1.0, float(np.mean(lengths))) if len(lengths) else 1.0
    pool_size = max(1, int(pool_batches * batch_tokens / mean_length))
    batches = []
    for start in range(0, len(order), pool_size):
        pool = order[start : start + pool_size]
        pool = pool[np.argsort(lengths[pool], kind="stable")]
        current: list[int] = []
        longest = 0
        for index in pool:
            length = int(lengths[index])
            if current and max(longest, length) * (len(current) + 1) > batch_tokens:
                batches.append(np.asarray(current))
                current, longest = [], 0
            current.append(int(index))
            longest = max(longest, length)
        if current:
            batches.append(np.asarray(current))
    if shuffle:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def pad_batch(
    sequences: Sequence[Sequence[int]],
    pad_id: int,
    prefix: int | None = None,
    suffix: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad token lists into an int64 array [batch, longest] (with optional prefix/suffix
    tokens added to each); returns it and the lengths [batch]."""
    extra = (prefix is not None) + (suffix is not None)
    lengths = np.asarray([len(s) + extra for s in sequences], dtype=np.int64)
    out = np.full((len(sequences), int(lengths.max()) if len(lengths) else 0), pad_id, np.int64)
    for row, seq in enumerate(sequences):
        tokens = ([prefix] if prefix is not None else []) + list(seq)
        if suffix is not None:
            tokens.append(suffix)
        out[row, : len(tokens)] = tokens
    return out, lengths


# ----------------------------------------------------------------------------- sharing an epoch


@dataclass
class UpdateBatches:
    """The batches one process reads for one update, and the data position after the update."""

    batches: list
    real: list[bool]  # False: a dummy, read only to keep the processes in step (zero weight)
    end: int


@dataclass
class Shard:
    """One process's share of an epoch, from data position ``start`` on.

    A data position counts the batches of the epoch read so far: in the epoch's shared batch
    list (``stride`` = the number of processes, which each read one batch per step of the list),
    or in the process's own list when the task splits its data per process (``stride`` 1).
    Every process's shard has the same length, so they all run the same number of updates."""

    batches: list
    real: list[bool]
    start: int
    stride: int
    total: int  # data positions in the epoch

    def updates(self, accumulate: int) -> Iterator[UpdateBatches]:
        """The shard cut into updates of ``accumulate`` batches (the last maybe fewer)."""
        for first in range(0, len(self.batches), accumulate):
            end = min(self.total, self.start + (first + accumulate) * self.stride)
            window = slice(first, first + accumulate)
            yield UpdateBatches(self.batches[window], self.real[window], end)


def shard_batches(batches: Sequence, rank: int, processes: int, start: int = 0) -> Shard:
    """Process ``rank``'s share of an epoch's ``batches`` (the same list on every process)
    from data position ``start``: ``batches[start:][rank::processes]``, padded with dummies (the
    epoch's first batch, flagged not real) to the length of the longest share. The shares
    are disjoint, cover every batch once, and do not depend on where a run was resumed:
    ``shard_batches(b, r, n, start)`` continues ``shard_batches(b, r, n)`` from batch
    ``start // n`` when ``start`` is a multiple of ``n``."""
    if not 0 <= rank < processes:
        raise ValueError(f"rank {rank} is not one of {processes} processes")
    remaining = list(batches[start:])
    mine = remaining[rank::processes]
    length = math.ceil(len(remaining) / processes)
    real = [True] * len(mine) + [False] * (length - len(mine))
    mine += list(batches[:1]) * (length - len(mine))  # the same dummy wherever a run resumed
    return Shard(mine, real, start, processes, len(batches))


def own_shard(batches: Sequence, start: int = 0) -> Shard:
    """The shard of a process that reads its own list ``batches`` (a task that splits its data
    per process), from position ``start``."""
    remaining = list(batches[start:])
    return Shard(remaining, [True] * len(remaining), start, 1, len(batches))
