"""Translate stdin to stdout: ``python -m seq2seq.translate --bundle DIR < src > hyp``.

Reads in chunks, so a file of any size streams through in constant memory; writes one line per
input line, in order (an empty input line gives an empty output line). With ``--n-best N`` it
writes N lines per input line, Moses style: ``INDEX ||| hypothesis ||| score`` (INDEX counts
input lines from 0; score is the length-normalised log-probability). The decoding flags are
those of :class:`export.runtime.DecodingOptions`, checked the same way.
"""

from __future__ import annotations

import argparse
import sys

from seq2seq.core.cli import (
    add_decoding_arguments,
    decoding_options_from_args,
    open_input,
    open_output,
    read_stream_lines,
    run_command,
)


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Which model decodes, and where: shared by translate and evaluate."""
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--bundle", help="exported bundle directory (ONNX runtime, no torch)")
    model.add_argument("--checkpoint", help="a training checkpoint (decodes with torch)")
    parser.add_argument(
        "--trust-checkpoint",
        action="store_true",
        help="--checkpoint: also read one written before checkpoint format 2, which holds "
        "pickled Python objects (only for files you trust)",
    )
    parser.add_argument("--batch-size", type=int, default=32, help="sentences per batch")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where to run")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (bundle)")
    parser.add_argument(
        "--truncate",
        action="store_true",
        help="cut inputs longer than the model was trained on, instead of stopping with an error",
    )


def load_translator(args):
    if args.bundle:
        from export.runtime import Translator

        return Translator.load(args.bundle, device=args.device, threads=args.threads)
    try:
        import torch

        from seq2seq.torch_translator import TorchTranslator
    except ImportError as error:
        raise RuntimeError(
            f"--checkpoint decodes with torch, which cannot be imported here "
            f"({error}); export a bundle and use --bundle"
        ) from None
    if args.threads:
        torch.set_num_threads(args.threads)
    return TorchTranslator.from_checkpoint(
        args.checkpoint, device=args.device, trust=args.trust_checkpoint
    )


def parse_args(argv) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m seq2seq.translate",
        description="Translate standard input, one sentence per line, to standard output.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_model_arguments(parser)
    add_decoding_arguments(parser, "translation", beam=5)
    parser.add_argument("--input", default="-", help="input file (default: standard input)")
    parser.add_argument("--output", default="-", help="output file (default: standard output)")
    return parser.parse_args(argv)


def translate(args: argparse.Namespace) -> int:
    options = decoding_options_from_args(args, "translation")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {args.batch_size}")
    translator = load_translator(args)
    name = "standard input" if args.input == "-" else args.input
    index = 0
    with open_input(args.input) as source, open_output(args.output) as target:
        for chunk in read_stream_lines(source, name, args.batch_size * 16):
            for translation in translator.translate(
                chunk, options, batch_size=args.batch_size, truncate=args.truncate
            ):
                if options.n_best > 1:
                    for text, score in translation.hypotheses:
                        target.write(f"{index} ||| {text} ||| {score:.4f}\n")
                else:
                    target.write(translation.text + "\n")
                index += 1
            target.flush()
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    return run_command(lambda: translate(args))


if __name__ == "__main__":
    sys.exit(main())
