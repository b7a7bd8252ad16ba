"""Batches for training: token-based batches with length bucketing, and padding.

Batches are lists of example indices fixed by (seed, epoch), so a resumed run rebuilds exactly
the batches it had and continues from the next one. numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence

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
