"""``metrics.jsonl``: one JSON line per train window and per evaluation, one history per run.

A run resumed from ``last.pt`` at update S continues a history whose lines past S were written
after that checkpoint and are lost with it (the updates are redone); :meth:`MetricsLog.purge_after`
drops them, as TensorBoard's ``purge_step`` does, so every step appears once.
"""

from __future__ import annotations

import json
import os


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
