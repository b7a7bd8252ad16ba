"""Stream text from a language-model bundle: ``python -m generate.sample --prompt "..."``.

Writes the prompt, then the continuation to stdout as its tokens are made. Without ``--bundle``
it uses the newest language-model bundle under ``./runs`` (``python -m generate.train`` with no
arguments makes one in ``runs/demo-lm``). Runs on the torch-free runtime: numpy + onnxruntime +
sentencepiece.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys

RUNS = "runs"


def find_newest_bundle(runs: str = RUNS) -> str | None:
    """The most recently exported language-model bundle ``RUNS/*/bundle``, or None."""
    from export.bundle import BundleError, read_manifest

    found = []
    for manifest in glob.glob(os.path.join(runs, "*", "bundle", "model.json")):
        directory = os.path.dirname(manifest)
        try:
            if read_manifest(directory, verify=False)["kind"] == "language_model":
                found.append((os.path.getmtime(manifest), directory))
        except BundleError:
            continue
    return max(found)[1] if found else None


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m generate.sample",
        description="Continue a prompt with a language-model bundle, streaming the text to "
        "stdout as it is made.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--prompt", default="", help="text to continue (empty: start at the beginning of a line)"
    )
    parser.add_argument(
        "--bundle",
        help=f"bundle directory (default: the newest language-model bundle under ./{RUNS})",
    )
    parser.add_argument(
        "--max-tokens",
        type=int,
        default=500,
        help="tokens to generate at most (characters, words or subwords)",
    )
    parser.add_argument(
        "--temperature",
        type=float,
        default=0.8,
        help="sampling temperature (0: greedy, always the most likely token)",
    )
    parser.add_argument(
        "--top-k", type=int, default=0, help="sample from the k most likely tokens only (0: all)"
    )
    parser.add_argument(
        "--top-p",
        type=float,
        default=1.0,
        help="sample from the smallest set of tokens whose probability reaches "
        "this (nucleus sampling; 1: all)",
    )
    parser.add_argument(
        "--repetition-penalty",
        type=float,
        default=1.0,
        help="above 1: make tokens already in the prompt or the text less likely",
    )
    parser.add_argument(
        "--stop",
        action="append",
        default=[],
        metavar="TEXT",
        help="end the text before this string (repeat for several)",
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="random seed: the same seed gives the same text"
    )
    parser.add_argument(
        "--device",
        default="cpu",
        choices=["cpu", "cuda"],
        help="where to run (cuda needs onnxruntime-gpu)",
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="CPU threads (default: onnxruntime's)"
    )
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    bundle = args.bundle or find_newest_bundle()
    if bundle is None:
        print(
            f"error: no --bundle given and no language-model bundle under ./{RUNS}. Train "
            "the demo model (a few minutes on a laptop CPU) with:\n"
            "    python -m generate.train\n"
            "or your own with python -m generate.train --text FILE --out RUN_DIR, then "
            "pass --bundle RUN_DIR/bundle",
            file=sys.stderr,
        )
        return 2
    if not args.bundle:
        print(f"(bundle: {bundle})", file=sys.stderr)
    from export.runtime import Generator

    try:
        generator = Generator.load(bundle, device=args.device, threads=args.threads)
        pieces = generator.stream(
            args.prompt,
            max_tokens=args.max_tokens,
            temperature=args.temperature,
            top_k=args.top_k,
            top_p=args.top_p,
            repetition_penalty=args.repetition_penalty,
            stop=args.stop,
            seed=args.seed,
        )
        first = next(pieces, "")  # checks the prompt and the settings before writing anything
        sys.stdout.write(args.prompt + first)
        sys.stdout.flush()
        for piece in pieces:
            sys.stdout.write(piece)
            sys.stdout.flush()
        sys.stdout.write("\n")
        sys.stdout.flush()
    except (ValueError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # the reader went away (| head): not an error; keep Python's exit flush quiet too
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
