"""Classification scores: accuracy, macro-F1, per-class precision/recall/F1/support and the
confusion matrix. numpy only (training validation and the torch-free evaluate share it)."""

from __future__ import annotations

import numpy as np


def confusion_matrix(gold: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """``gold``, ``predicted``: [texts] class ids -> [classes, classes] counts (row: gold)."""
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(gold), np.asarray(predicted)), 1)
    return matrix


def classification_scores(gold, predicted, names: list[str]) -> dict:
    """Accuracy, macro-F1 (the unweighted mean of the classes' F1, every class of ``names``
    counted, also one absent from ``gold``), per-class figures and the confusion matrix."""
    matrix = confusion_matrix(gold, predicted, len(names))
    true_positive = np.diag(matrix).astype(np.float64)
    support = matrix.sum(1)
    predicted_count = matrix.sum(0)
    precision = np.divide(
        true_positive, predicted_count, out=np.zeros_like(true_positive), where=predicted_count > 0
    )
    recall = np.divide(true_positive, support, out=np.zeros_like(true_positive), where=support > 0)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(total), where=total > 0)
    texts = int(matrix.sum())
    return {
        "accuracy": float(true_positive.sum() / max(1, texts)),
        "macro_f1": float(f1.mean()),
        "texts": texts,
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(names)
        },
        "labels": list(names),
        "confusion_matrix": matrix.tolist(),
    }
