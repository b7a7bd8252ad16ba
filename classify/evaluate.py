"""Score a classifier bundle on labelled data: ``python -m classify.evaluate --bundle DIR
--data F``.

Prints JSON: ``accuracy``, ``macro_f1``, per-class precision/recall/F1/support, and the
confusion matrix (rows: gold labels, columns: predicted, in the order of ``labels``);
``--plot FILE.png`` draws the matrix (needs matplotlib, in the ``train`` extra). The data is
read like training data (CSV, TSV or fastText; the bundle's training columns and format are
the defaults); a label the model was not trained on is an error naming the file and line.
Runs on the torch-free runtime.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from seq2seq.core.cli import add_runtime_arguments, run_command


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m classify.evaluate",
        description="Accuracy, macro-F1, per-class figures and the confusion matrix of a "
        "classifier bundle on labelled data (JSON to stdout).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--bundle", required=True, help="classification bundle directory")
    parser.add_argument("--data", required=True, help="labelled data: CSV, TSV or fastText")
    parser.add_argument(
        "--format",
        choices=["auto", "csv", "tsv", "fasttext"],
        default=None,
        help="data format (default: the one used in training, else by extension)",
    )
    parser.add_argument("--text-column", default=None, help="default: the training one")
    parser.add_argument("--label-column", default=None, help="default: the training one")
    parser.add_argument("--plot", default=None, metavar="FILE.png", help="draw the matrix")
    parser.add_argument("--batch-size", type=int, default=64, help="texts per model call")
    add_runtime_arguments(parser)
    args = parser.parse_args(argv)
    return run_command(lambda: evaluate(args))


def evaluate(args: argparse.Namespace) -> int:
    from classify.data import check_known_labels, read_labelled
    from classify.scores import classification_scores
    from export.runtime import Classifier

    classifier = Classifier.load(args.bundle, device=args.device, threads=args.threads)
    trained = classifier.manifest.get("config", {})
    data = read_labelled(
        args.data,
        args.format or trained.get("format", "auto"),
        args.text_column or trained.get("text_column", "text"),
        args.label_column or trained.get("label_column", "label"),
    )
    check_known_labels(data, classifier.labels, role="model's")
    started = time.monotonic()
    probabilities = classifier.probabilities(data.texts, batch_size=args.batch_size)
    seconds = time.monotonic() - started
    gold = [classifier.labels.index(label) for label in data.labels]
    result = classification_scores(gold, probabilities.argmax(1), classifier.labels)
    result.update(
        bundle=args.bundle,
        data=args.data,
        seconds=round(seconds, 2),
        texts_per_second=round(len(data) / max(seconds, 1e-9)),
    )
    if args.plot:
        plot_confusion(result, args.plot)
    print(json.dumps(result, indent=2))
    return 0


def plot_confusion(result: dict, path: str) -> None:
    """Draw the confusion matrix of ``result`` to ``path`` (rows normalised to recall)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ValueError("--plot needs matplotlib: pip install matplotlib") from None
    import numpy as np

    matrix = np.asarray(result["confusion_matrix"], dtype=np.float64)
    rows = matrix / np.maximum(1, matrix.sum(1, keepdims=True))
    labels = result["labels"]
    size = 2.5 + 0.6 * len(labels)
    figure, axes = plt.subplots(figsize=(size + 1.5, size))
    image = axes.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    axes.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    axes.set_yticks(range(len(labels)), labels)
    axes.set_xlabel("predicted")
    axes.set_ylabel("gold")
    for i in range(len(labels)):
        for j in range(len(labels)):
            colour = "white" if rows[i, j] > 0.5 else "black"
            axes.text(j, i, int(matrix[i, j]), ha="center", va="center", color=colour, size=8)
    axes.set_title(f"accuracy {result['accuracy']:.3f}, macro-F1 {result['macro_f1']:.3f}")
    figure.colorbar(image, ax=axes, label="share of the gold row")
    figure.tight_layout()
    try:
        figure.savefig(path, dpi=120)
    finally:
        plt.close(figure)


if __name__ == "__main__":
    sys.exit(main())
