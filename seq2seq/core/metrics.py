"""``metrics.jsonl``: one JSON line per train window and per evaluation, one history per run.

A run resumed from ``last.pt`` at update S continues a history whose lines past S were written
after that checkpoint and are lost with it (the updates are redone); :meth:`MetricsLog.purge_after`
drops them, as TensorBoard's ``purge_step`` does, so every step appears once.
"""

from __future__ import annotations

import json
import math
import os


class TrainWindow:
    """The training statistics summed since the last train line (over every process of the
    run), and the figures of that line."""

    KEYS = ("loss_sum", "nll_sum", "targets", "throughput_tokens", "grad_norm")

    def __init__(self):
        self.clear()

    def clear(self) -> None:
        self.sums = dict.fromkeys(self.KEYS, 0)
        self.seconds = 0.0
        self.updates = 0

    def add(self, stats: dict, seconds: float) -> None:
        """One update's statistics (``KEYS``) and how long it took."""
        for key in self.KEYS:
            self.sums[key] += stats[key]
        self.seconds += seconds
        self.updates += 1

    def figures(self) -> dict:
        """Loss and NLL per prediction, perplexity, tokens/s and the mean gradient norm."""
        targets = max(1, self.sums["targets"])
        nll = self.sums["nll_sum"] / targets
        return {
            "loss": self.sums["loss_sum"] / targets,
            "nll": nll,
            "ppl": math.exp(min(50.0, nll)),
            "tokens_per_s": round(self.sums["throughput_tokens"] / max(1e-9, self.seconds)),
            "grad_norm": self.sums["grad_norm"] / max(1, self.updates),
        }


class MetricsLog:
    def __init__(self, path: str):
        self.path = path

    def write(self, row: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")

    def read(self) -> list[dict]:
        return read_metrics(self.path)

    def purge_after(self, step: int) -> int:
        """Drop the lines of steps after ``step`` (atomically); return how many went."""
        if not os.path.exists(self.path):
            return 0
        with open(self.path, encoding="utf-8") as f:
            lines = [line for line in f if line.strip()]
        kept = [line for line in lines if _step_of(line) <= step]
        if len(kept) == len(lines):
            return 0
        temporary = self.path + ".tmp"
        with open(temporary, "w", encoding="utf-8") as f:
            f.writelines(kept)
        os.replace(temporary, self.path)
        return len(lines) - len(kept)


def _step_of(line: str) -> int:
    try:
        return int(json.loads(line).get("step", 0))
    except (ValueError, AttributeError):
        return 0  # a torn last line from a killed run: keep, harmless to the plot


def read_metrics(path: str) -> list[dict]:
    """Every row of a ``metrics.jsonl`` (a torn last line from a killed run is skipped)."""
    if not os.path.exists(path):
        return []
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict):
                rows.append(row)
    return rows
