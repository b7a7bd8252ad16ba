"""Parallel text for translation: reading both sides (line counts must match), filtering pairs
(with counts of what was dropped and why), and splitting a held-out tail off when no
validation pair is given."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from seq2seq.core.text_files import read_lines


def read_parallel(src_path: str, tgt_path: str) -> tuple[list[str], list[str]]:
    """Both sides of a parallel corpus; their line counts must match."""
    src, tgt = read_lines(src_path), read_lines(tgt_path)
    if len(src) != len(tgt):
        raise ValueError(
            f"{src_path} has {len(src)} lines but {tgt_path} has {len(tgt)}: "
            "a parallel corpus needs one target line per source line"
        )
    return src, tgt


def split_held_out(
    src: list[str], tgt: list[str], fraction: float, origin: str
) -> tuple[list[str], list[str], list[str], list[str]]:
    """The last ``fraction`` of a parallel corpus, split off for validation (the tail, so that
    it is the same every run and never shuffled into training): train src, train tgt, valid
    src, valid tgt."""
    if not 0 < fraction < 1:
        raise ValueError(f"valid_fraction must be between 0 and 1, got {fraction}")
    held_out = max(1, int(round(len(src) * fraction)))
    if len(src) - held_out < 1:
        raise ValueError(
            f"{origin}: {len(src)} pairs are too few to split off a validation tail; give "
            "--valid-src and --valid-tgt"
        )
    cut = len(src) - held_out
    return src[:cut], tgt[:cut], src[cut:], tgt[cut:]


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
