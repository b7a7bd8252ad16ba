"""Score a model on a test set: ``python -m seq2seq.evaluate --bundle DIR --src F --ref F``.

Prints JSON with sacrebleu's BLEU and chrF (default settings, detokenized text) and their
signatures, plus the decoding settings and speed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from seq2seq.translate import add_decoding_arguments, decoding_options, load_translator


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m seq2seq.evaluate",
        description="Translate --src and score it against --ref with sacrebleu (BLEU, chrF).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_decoding_arguments(parser)
    parser.add_argument("--src", required=True, help="source sentences, one per line")
    parser.add_argument("--ref", required=True, help="reference translations, line-aligned")
    parser.add_argument("--hypotheses", help="also write the translations to this file")
    args = parser.parse_args(argv)
    args.n_best = 1
    try:
        from seq2seq.data import read_parallel
        from seq2seq.scoring import corpus_scores

        sources, references = read_parallel(args.src, args.ref)
        translator = load_translator(args)
        started = time.monotonic()
        translations = translator.translate(sources, **decoding_options(args))
        seconds = time.monotonic() - started
    except (ValueError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    hypotheses = [t.text for t in translations]
    if args.hypotheses:
        with open(args.hypotheses, "w", encoding="utf-8") as f:
            f.writelines(h + "\n" for h in hypotheses)
    result = corpus_scores(hypotheses, references)
    result.update(
        model=args.bundle or args.checkpoint,
        sentences=len(sources),
        beam=1 if args.sample else args.beam,
        sample=args.sample,
        seconds=round(seconds, 2),
        sentences_per_second=round(len(sources) / max(seconds, 1e-9), 2),
    )
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
