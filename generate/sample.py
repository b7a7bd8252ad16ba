"""Stream text from a language-model bundle: ``python -m generate.sample --prompt "..."``.

Writes the prompt, then the continuation to stdout as its tokens are made. Without ``--bundle``
it uses the newest language-model bundle under ``./runs`` (``python -m generate.train`` with no
arguments makes one in ``runs/demo-lm``). Runs on the torch-free runtime: numpy + onnxruntime +
sentencepiece. The decoding flags are those of :class:`export.runtime.DecodingOptions`.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys

from seq2seq.core.cli import (
    add_decoding_arguments,
    add_runtime_arguments,
    decoding_options_from_args,
    run_command,
)

RUNS = "runs"


def find_newest_bundle(runs: str = RUNS) -> str | None:
    """The most recently exported language-model bundle ``RUNS/*/bundle``, or None."""
    from export.runtime.bundle import BundleError, read_manifest

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
    add_decoding_arguments(parser, "language_model", max_tokens=500, temperature=0.8)
    add_runtime_arguments(parser)
    return parser.parse_args(argv)


def sample(args: argparse.Namespace) -> int:
    options = decoding_options_from_args(args, "language_model")
    bundle = args.bundle or find_newest_bundle()
    if bundle is None:
        raise ValueError(
            f"no --bundle given and no language-model bundle under ./{RUNS}. Train "
            "the demo model (a few minutes on a laptop CPU) with:\n"
            "    python -m generate.train\n"
            "or your own with python -m generate.train --text FILE --out RUN_DIR, then "
            "pass --bundle RUN_DIR/bundle"
        )
    if not args.bundle:
        print(f"(bundle: {bundle})", file=sys.stderr)
    from export.runtime import Generator

    generator = Generator.load(bundle, device=args.device, threads=args.threads)
    pieces = generator.stream(args.prompt, options)
    first = next(pieces, "")  # checks the prompt before writing anything
    sys.stdout.write(args.prompt + first)
    sys.stdout.flush()
    for piece in pieces:
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")
    sys.stdout.flush()
    return 0


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    return run_command(lambda: sample(args))


if __name__ == "__main__":
    sys.exit(main())
