"""Score a model on a test set: ``python -m seq2seq.evaluate --bundle DIR --src F --ref F``.

Prints JSON with sacrebleu's BLEU and chrF (default settings, detokenized text) and their
signatures, plus the decoding settings and speed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from seq2seq.core.cli import (
    add_decoding_arguments,
    decoding_options_from_args,
    open_output,
    run_command,
)
from seq2seq.translate import add_model_arguments, load_translator


def parse_args(argv) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m seq2seq.evaluate",
        description="Translate --src and score it against --ref with sacrebleu (BLEU, chrF).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_model_arguments(parser)
    add_decoding_arguments(parser, "translation", skip=("n_best",), beam=5)
    parser.add_argument("--src", required=True, help="source sentences, one per line")
    parser.add_argument("--ref", required=True, help="reference translations, line-aligned")
    parser.add_argument("--hypotheses", help="also write the translations to this file")
    return parser.parse_args(argv)


def evaluate(args: argparse.Namespace) -> int:
    from seq2seq.data import read_parallel
    from seq2seq.scoring import corpus_scores

    options = decoding_options_from_args(args, "translation")
    sources, references = read_parallel(args.src, args.ref)
    translator = load_translator(args)
    started = time.monotonic()
    translations = translator.translate(
        sources, options, batch_size=args.batch_size, truncate=args.truncate
    )
    seconds = time.monotonic() - started
    hypotheses = [t.text for t in translations]
    if args.hypotheses:
        with open_output(args.hypotheses) as f:
            f.writelines(h + "\n" for h in hypotheses)
    result = corpus_scores(hypotheses, references)
    result.update(
        model=args.bundle or args.checkpoint,
        sentences=len(sources),
        beam=options.beam,
        sample=options.sample,
        seconds=round(seconds, 2),
        sentences_per_second=round(len(sources) / max(seconds, 1e-9), 2),
    )
    print(json.dumps(result, indent=2))
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    return run_command(lambda: evaluate(args))


if __name__ == "__main__":
    sys.exit(main())
