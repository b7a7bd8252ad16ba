"""Random streams for sampling: one per row, so that a row samples the same text whatever else
shares its batch.

Row ``i`` of a call seeded ``s`` draws from ``numpy.random.default_rng([s, i])``; row 0 draws from
``default_rng(s)`` itself, so a one-row call samples exactly as a single stream seeded ``s``
would. A caller that merges rows of several calls (the HTTP service's batches) gives each row the
seed it has in its own call, :func:`row_seed`, and gets the same text as that call alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# A row's seed: None (fresh entropy), an int, or a tuple of ints (numpy SeedSequence entropy).
RowSeed = int | tuple[int, ...] | None


def row_seed(seed: int | None, row: int) -> RowSeed:
    """The seed of row ``row`` of a call seeded ``seed``."""
    if seed is None or row == 0:
        return seed
    return (seed, row)


def row_seeds(seed: int | None | Sequence[RowSeed], rows: int) -> list[RowSeed]:
    """Per-row seeds: ``seed`` is one call's seed (None: unseeded) or already one seed per row."""
    if seed is None or isinstance(seed, (int, np.integer)):
        return [row_seed(None if seed is None else int(seed), row) for row in range(rows)]
    seeds = list(seed)
    if len(seeds) != rows:
        raise ValueError(f"{len(seeds)} row seeds for {rows} rows")
    return seeds


def row_generators(seed: int | None | Sequence[RowSeed], rows: int) -> list[np.random.Generator]:
    """One independent numpy Generator per row (see :func:`row_seeds`)."""
    return [np.random.default_rng(s) for s in row_seeds(seed, rows)]


def uniform_draws(
    rng: np.random.Generator | Sequence[np.random.Generator], rows: int
) -> np.ndarray:
    """One uniform [0, 1) draw per row [rows]: all from one Generator, or each from its row's."""
    if isinstance(rng, np.random.Generator):
        return rng.random(rows)
    return np.asarray([generator.random() for generator in rng], dtype=np.float64)
