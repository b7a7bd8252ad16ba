"""Train a recurrent text classifier: ``python -m classify.train``.

With no arguments it trains a small model on a labelled sample shipped with the package (Bible
verses labelled with their section; a few minutes on 2 CPU cores), exports it, and prints its
validation scores and a few predictions. With your own data::

    python -m classify.train --train train.tsv --valid dev.tsv --out runs/my-classifier
    python -m classify.train --config configs/bible-sections.yaml \\
        --train train.tsv --valid dev.tsv --out runs/bible-sections --max-minutes 10

Without ``--valid`` a random ``valid_fraction`` of ``--train`` is held out. ``--resume``
continues a run exactly where it stopped. The flags common to every family's ``train`` come
from :class:`seq2seq.core.cli.TrainCommand`.
"""

from __future__ import annotations

import json
import os
import sys
import time

from seq2seq.core.cli import TrainCommand

DEMO_OUT = os.path.join("runs", "demo-classifier")
DEMO_SETTINGS = {
    # about 5,000 short texts: a smaller vocabulary, early evaluations to pick best.pt, and a
    # stop once 1,000 updates bring nothing (it overfits after about 1,000 updates)
    "subword_vocab_size": 4000,
    "eval_every": 100,
    "patience": 10,
    "max_minutes": 3.0,
}


def demo_settings() -> dict:
    from seq2seq.core.text_files import default_corpus_path

    return {
        **DEMO_SETTINGS,
        "train": default_corpus_path("classify", "train.tsv.gz"),
        "valid": default_corpus_path("classify", "valid.tsv.gz"),
    }


def load_data(config, log=print):
    """The training and validation texts and the label names (sorted), checked: a label seen
    only in the validation data is an error naming its file and line."""
    from classify.data import check_known_labels, hold_out, read_labelled

    columns = dict(
        format=config.format, text_column=config.text_column, label_column=config.label_column
    )
    if not config.train:
        raise ValueError("--train FILE is required (labelled texts: CSV, TSV or fastText)")
    train = read_labelled(config.train, **columns)
    if config.valid:
        valid = read_labelled(config.valid, **columns)
        labels = sorted(set(train.labels))
        check_known_labels(valid, labels)
        log(
            f"data: {len(train):,} training texts from {config.train}, {len(valid):,} "
            f"validation texts from {config.valid}"
        )
    else:
        labels = sorted(set(train.labels))
        train, valid = hold_out(train, config.valid_fraction, config.seed)
        log(
            f"data: {config.train}: {len(valid):,} of {len(train) + len(valid):,} texts held "
            f"out at random for validation (valid_fraction {config.valid_fraction:g})"
        )
    if len(labels) < 2:
        raise ValueError(f"{config.train}: only one label ({labels[0]!r}); a classifier needs two")
    return train, valid, labels


def make_task(config, run_dir: str, device, log):
    from classify.model import build_model
    from classify.task import ClassificationTask
    from classify.vocabulary import build_tokenizer

    train, valid, labels = load_data(config, log)
    tokenizer = build_tokenizer(config, train.texts, run_dir, log)
    model = build_model(config, tokenizer.vocab_size, len(labels)).to(device)
    parameters = sum(p.numel() for p in model.parameters())
    log(
        f"model: {config.layers}-layer {'bi' if config.bidirectional else ''}{config.cell}, "
        f"hidden {config.hidden_size}, embedding {config.embedding_size}, {config.pooling} "
        f"pooling, {len(labels)} classes, {parameters / 1e6:.2f}M parameters, on {device}"
    )
    return ClassificationTask(config, model, tokenizer, labels, train, valid, log=log)


def report(config, run_dir: str, task, log) -> int:
    """Export best.pt to RUN_DIR/bundle, score the validation data with the ONNX runtime, and
    show a few predictions."""
    from classify.scores import classification_scores
    from export.classification import export_classifier
    from export.runtime import Classifier
    from seq2seq.core.checkpoint import load_checkpoint

    bundle = os.path.join(run_dir, "bundle")
    export_classifier(load_checkpoint(os.path.join(run_dir, "best.pt")), bundle)
    classifier = Classifier.load(bundle)
    started = time.monotonic()
    probabilities = classifier.probabilities(task.valid_texts)
    seconds = time.monotonic() - started
    scores = classification_scores(task.valid_targets, probabilities.argmax(1), task.labels)
    log(
        f"\nvalidation (best.pt, ONNX runtime, {len(task.valid_texts):,} texts in "
        f"{seconds:.1f} s): accuracy {scores['accuracy']:.3f}, macro-F1 {scores['macro_f1']:.3f}"
    )
    for name, figures in scores["per_class"].items():
        log(f"  {name:<30} F1 {figures['f1']:.3f}  (support {figures['support']})")
    log("\nexamples (gold -> predicted, probability):")
    for index in range(0, len(task.valid_texts), max(1, len(task.valid_texts) // 5))[:5]:
        best = int(probabilities[index].argmax())
        text = task.valid_texts[index]
        text = text if len(text) <= 90 else text[:87] + "..."
        log(
            f"  {task.labels[task.valid_targets[index]]} -> {task.labels[best]} "
            f"{probabilities[index, best]:.2f}: {text}"
        )
    with open(os.path.join(run_dir, "valid_scores.json"), "w", encoding="utf-8") as f:
        json.dump(scores, f, indent=2)
    log(f"\nrun directory: {run_dir} (config.yaml, metrics.jsonl, curves.png, last.pt, best.pt)")
    log(f"bundle:        {bundle}   try: python -m classify.predict --bundle {bundle} < texts.txt")
    return 0


def classification_command():
    from classify.config import ClassifierConfig

    return TrainCommand(
        prog="python -m classify.train",
        description="Train a recurrent text classifier, export it to an ONNX bundle, and "
        "report validation accuracy and macro-F1. With no arguments: the built-in demo.",
        config_class=ClassifierConfig,
        data_keys=("train", "valid"),
        demo_out=DEMO_OUT,
        demo_settings=demo_settings,
        demo_message="demo: training a classifier of Bible verses by section (a sample shipped "
        "with the package) for {minutes} minutes, into {run_dir}",
        make_task=make_task,
        report=report,
    )


def main(argv=None) -> int:
    return classification_command().main(argv)


if __name__ == "__main__":
    sys.exit(main())
