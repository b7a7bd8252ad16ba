"""Classify texts with a bundle: ``python -m classify.predict --bundle DIR < texts.txt``.

One text per input line; one TSV line per input line on stdout: ``label<TAB>probability``,
with ``--top-k K`` the K most probable labels as pairs on the line, most probable first;
``--threshold P`` keeps only labels with probability at least P (a line may then be empty).
Reads and writes in batches, so a file of any size streams through. Runs on the base install
(numpy + onnxruntime + sentencepiece, no torch).
"""

from __future__ import annotations

import argparse
import sys

from seq2seq.core.cli import (
    add_runtime_arguments,
    open_input,
    open_output,
    read_stream_lines,
    run_command,
)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m classify.predict",
        description="Label each input line with a classifier bundle (label<TAB>probability).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--bundle", required=True, help="classification bundle directory")
    parser.add_argument("--input", default="-", help="UTF-8 texts, one per line (-: stdin)")
    parser.add_argument("--output", default="-", help="where to write (-: stdout)")
    parser.add_argument("--top-k", type=int, default=1, help="labels per text")
    parser.add_argument(
        "--threshold", type=float, default=None, help="only labels with at least this probability"
    )
    parser.add_argument("--batch-size", type=int, default=64, help="texts per model call")
    add_runtime_arguments(parser)
    args = parser.parse_args(argv)
    return run_command(lambda: predict(args))


def predict(args: argparse.Namespace) -> int:
    from export.runtime import Classifier

    classifier = Classifier.load(args.bundle, device=args.device, threads=args.threads)
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {args.batch_size}")
    # check the options before reading any input
    classifier.predict([], top_k=args.top_k, threshold=args.threshold)
    name = "standard input" if args.input == "-" else args.input
    with open_input(args.input) as stream, open_output(args.output) as out:
        for chunk in read_stream_lines(stream, name, args.batch_size * 16):
            predictions = classifier.predict(
                chunk, top_k=args.top_k, threshold=args.threshold, batch_size=args.batch_size
            )
            for chosen in predictions:
                out.write("\t".join(f"{p.label}\t{p.probability:.4f}" for p in chosen) + "\n")
            out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
