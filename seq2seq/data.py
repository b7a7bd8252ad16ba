"""Reading parallel text, filtering it (with counts), and token-based batches with bucketing.

Batches are lists of example indices fixed by (seed, epoch), so a resumed run rebuilds exactly
the batches it had and continues from the next one.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


def read_lines(path: str) -> list[str]:
    """The lines of a UTF-8 text file (``.gz`` is read transparently), without line endings.

    Raises ValueError naming the file when it is missing, empty, or not valid UTF-8 (with the
    line number of the first bad byte)."""
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except OSError as error:
        raise ValueError(f"{path}: cannot read ({error.strerror or error})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise ValueError(
            f"{path}: not valid UTF-8 at line {line} (byte {error.start}: "
            f"{raw[error.start : error.start + 1]!r}); convert the file to UTF-8"
        ) from None
    if not text.strip():
        raise ValueError(f"{path}: the file is empty")
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line.rstrip("\r") for line in lines]


def read_parallel(src_path: str, tgt_path: str) -> tuple[list[str], list[str]]:
    """Both sides of a parallel corpus; their line counts must match."""
    src, tgt = read_lines(src_path), read_lines(tgt_path)
    if len(src) != len(tgt):
        raise ValueError(
            f"{src_path} has {len(src)} lines but {tgt_path} has {len(tgt)}: "
            "a parallel corpus needs one target line per source line"
        )
    return src, tgt


@dataclass
class FilterReport:
    kept: int = 0
    dropped: dict = field(default_factory=dict)

    def add(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1

    def __str__(self) -> str:
        if not self.dropped:
            return f"kept all {self.kept} pairs"
        reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(self.dropped.items()))
        return f"kept {self.kept} pairs, dropped {sum(self.dropped.values())} ({reasons})"


def filter_pairs(
    src_ids: Sequence[list[int]],
    tgt_ids: Sequence[list[int]],
    max_length: int,
    max_length_ratio: float = 0.0,
) -> tuple[list[int], FilterReport]:
    """Indices of the pairs to train on, and a report of what was dropped and why: empty sides,
    sides longer than ``max_length`` tokens, and (if set) pairs whose length ratio exceeds
    ``max_length_ratio``."""
    report = FilterReport()
    keep = []
    for i, (s, t) in enumerate(zip(src_ids, tgt_ids)):
        if not s or not t:
            report.add("empty")
        elif len(s) > max_length or len(t) > max_length:
            report.add(f"longer than {max_length} tokens")
        elif max_length_ratio and max(len(s), len(t)) > max_length_ratio * min(len(s), len(t)):
            report.add(f"length ratio over {max_length_ratio}")
        else:
            keep.append(i)
    report.kept = len(keep)
    return keep, report


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


def default_corpus_path(package: str, name: str) -> str:
    """Path of a small corpus shipped inside a package (``demo_data/``)."""
    import importlib.util

    spec = importlib.util.find_spec(package)
    return os.path.join(os.path.dirname(spec.origin), "demo_data", name)
