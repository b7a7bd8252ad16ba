"""The training-curve PNG of a run: train and dev loss, and the dev metric, against updates."""

from __future__ import annotations

import json
import os


def read_metrics(path: str) -> list[dict]:
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def plot_curves(metrics_path: str, png_path: str, metric: str) -> None:
    """Draw ``metrics.jsonl`` into ``png_path``: train and dev NLL per token on the left,
    the dev ``metric`` on the right."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_metrics(metrics_path)
    train = [r for r in rows if r.get("split") == "train"]
    dev = [r for r in rows if r.get("split") == "dev"]
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    if train:
        left.plot(
            [r["step"] for r in train], [r["nll"] for r in train], label="train", linewidth=0.8
        )
    if dev:
        left.plot([r["step"] for r in dev], [r["nll"] for r in dev], "o-", label="dev")
    left.set_xlabel("update")
    left.set_ylabel("negative log-likelihood (nats per token)")
    left.legend()
    left.grid(alpha=0.3)
    points = [r for r in dev if metric in r]
    if points:
        right.plot([r["step"] for r in points], [r[metric] for r in points], "o-", color="C2")
    right.set_xlabel("update")
    right.set_ylabel(f"dev {metric}")
    right.grid(alpha=0.3)
    figure.tight_layout()
    temporary = png_path + ".tmp.png"
    figure.savefig(temporary, dpi=90)
    plt.close(figure)
    os.replace(temporary, png_path)
