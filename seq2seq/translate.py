"""Translate stdin to stdout: ``python -m seq2seq.translate --bundle DIR < src > hyp``.

Reads in chunks, so a file of any size streams through in constant memory; writes one line per
input line, in order (an empty input line gives an empty output line). With ``--n-best N`` it
writes N lines per input line, Moses style: ``INDEX ||| hypothesis ||| score`` (INDEX counts
input lines from 0; score is the length-normalised log-probability).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator


def add_decoding_arguments(parser: argparse.ArgumentParser) -> None:
    """Model and search flags shared by translate and evaluate."""
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--bundle", help="exported bundle directory (ONNX runtime, no torch)")
    model.add_argument("--checkpoint", help="a training checkpoint (decodes with torch)")
    parser.add_argument("--beam", type=int, default=5, help="beam size (1: greedy search)")
    parser.add_argument("--sample", action="store_true", help="sample instead of searching")
    parser.add_argument("--temperature", type=float, default=1.0, help="sampling temperature")
    parser.add_argument("--top-k", type=int, default=0, help="sample from the k best tokens")
    parser.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass")
    parser.add_argument("--seed", type=int, default=None, help="sampling seed")
    parser.add_argument(
        "--length-penalty",
        type=float,
        default=1.0,
        help="beam: rank by score / length ** this (0: raw log-probability)",
    )
    parser.add_argument("--min-length", type=int, default=0, help="minimum output tokens")
    parser.add_argument(
        "--max-length-ratio",
        type=float,
        default=2.0,
        help="at most ratio x source tokens + offset output tokens",
    )
    parser.add_argument("--max-length-offset", type=int, default=10, help="see ratio")
    parser.add_argument(
        "--no-repeat-ngram",
        type=int,
        default=0,
        help="forbid repeating any n-gram of this size (0: off)",
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
    return TorchTranslator.from_checkpoint(args.checkpoint, device=args.device)


def decoding_options(args) -> dict:
    return dict(
        beam=1 if args.sample else args.beam,
        sample=args.sample,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        seed=args.seed,
        n_best=args.n_best,
        length_penalty=args.length_penalty,
        min_length=args.min_length,
        max_length=(args.max_length_ratio, args.max_length_offset),
        no_repeat_ngram=args.no_repeat_ngram,
        batch_size=args.batch_size,
        truncate=args.truncate,
    )


def read_chunks(stream, name: str, chunk_lines: int) -> Iterator[list[str]]:
    """Lines of a binary stream, decoded as UTF-8, ``chunk_lines`` at a time."""
    chunk: list[str] = []
    for number, raw in enumerate(stream, start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ValueError(
                f"{name}: line {number} is not valid UTF-8 ({error.reason} at byte {error.start})"
            ) from None
        chunk.append(line.rstrip("\r\n"))
        if len(chunk) == chunk_lines:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m seq2seq.translate",
        description="Translate standard input, one sentence per line, to standard output.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_decoding_arguments(parser)
    parser.add_argument(
        "--n-best",
        type=int,
        default=1,
        help="write the N best hypotheses per line (INDEX ||| text ||| score)",
    )
    parser.add_argument("--input", default="-", help="input file (default: standard input)")
    parser.add_argument("--output", default="-", help="output file (default: standard output)")
    args = parser.parse_args(argv)
    try:
        translator = load_translator(args)
        options = decoding_options(args)
        source = sys.stdin.buffer if args.input == "-" else open(args.input, "rb")
        target = sys.stdout if args.output == "-" else open(args.output, "w", encoding="utf-8")
        name = "standard input" if args.input == "-" else args.input
        index = 0
        with source, target:
            for chunk in read_chunks(source, name, max(1, args.batch_size) * 16):
                for translation in translator.translate(chunk, **options):
                    if args.n_best > 1:
                        for text, score in translation.hypotheses:
                            target.write(f"{index} ||| {text} ||| {score:.4f}\n")
                    else:
                        target.write(translation.text + "\n")
                    index += 1
                target.flush()
    except (ValueError, RuntimeError, TypeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # the reader went away (| head): not an error; keep Python's exit flush quiet too
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
