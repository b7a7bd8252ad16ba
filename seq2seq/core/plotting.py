"""The training-curve PNG of a run: train and validation loss, and the validation metric,
against updates."""

from __future__ import annotations

import os

from seq2seq.core.metrics import read_metrics

# evaluation lines: "valid" (runs from this version on) or "dev" (older runs)
EVALUATION_SPLITS = ("valid", "dev")


def plot_curves(metrics_path: str, png_path: str, metric: str) -> None:
    """Draw ``metrics.jsonl`` into ``png_path``: train and validation NLL per token on the
    left, the validation ``metric`` on the right."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_metrics(metrics_path)
    train = [r for r in rows if r.get("split") == "train"]
    valid = [r for r in rows if r.get("split") in EVALUATION_SPLITS]
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    if train:
        left.plot(
            [r["step"] for r in train], [r["nll"] for r in train], label="train", linewidth=0.8
        )
    if valid:
        left.plot([r["step"] for r in valid], [r["nll"] for r in valid], "o-", label="valid")
    left.set_xlabel("update")
    left.set_ylabel("negative log-likelihood (nats per token)")
    left.legend()
    left.grid(alpha=0.3)
    points = [r for r in valid if metric in r]
    if points:
        right.plot([r["step"] for r in points], [r[metric] for r in points], "o-", color="C2")
    right.set_xlabel("update")
    right.set_ylabel(f"validation {metric}")
    right.grid(alpha=0.3)
    figure.tight_layout()
    temporary = png_path + ".tmp.png"
    figure.savefig(temporary, dpi=90)
    plt.close(figure)
    os.replace(temporary, png_path)
