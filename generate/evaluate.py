"""Score a language-model bundle on a text: ``python -m generate.evaluate --bundle DIR --text F``.

Prints JSON with ``bits_per_char`` (NLL in bits / characters of the text) and
``perplexity_per_word`` (exp(NLL / whitespace-separated words)), which compare across char,
word and subword models, the per-token ``nll`` and ``ppl``, and ``unknown_tokens``: a word
model scores a word outside its vocabulary as one <unk>, which flatters its figures. The text
is read with the exported step graph as ``--streams`` contiguous rows side by side, state
carried, exactly as validation during training reads it. Runs on the torch-free runtime.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from seq2seq.core.cli import add_runtime_arguments, run_command


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m generate.evaluate",
        description="Bits per character and per-word perplexity of a language-model bundle on "
        "a text (JSON to stdout).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--bundle", required=True, help="language-model bundle directory")
    parser.add_argument("--text", required=True, help="UTF-8 text to score (plain or .gz)")
    parser.add_argument(
        "--streams",
        type=int,
        default=16,
        help="rows read side by side (training validates with eval_streams, "
        "16 by default; fewer: slower, slightly more exact)",
    )
    add_runtime_arguments(parser)
    args = parser.parse_args(argv)
    return run_command(lambda: evaluate(args))


def evaluate(args: argparse.Namespace) -> int:
    from export.runtime import Generator
    from export.runtime.tokenizers import UNK_ID
    from generate.scores import text_scores
    from seq2seq.core.text_files import read_text

    if args.streams < 1:
        raise ValueError(f"--streams must be at least 1, got {args.streams}")
    text = read_text(args.text)
    generator = Generator.load(args.bundle, device=args.device, threads=args.threads)
    started = time.monotonic()
    nll, tokens = generator.score(text, streams=args.streams)
    seconds = time.monotonic() - started
    result = text_scores(nll, tokens, text)
    # a word model scores a word outside its vocabulary as one cheap <unk>: its figures are
    # optimistic by as much as such tokens are common, so report how common they are
    result["unknown_tokens"] = generator.tokenizer.encode(text).count(UNK_ID)
    result.update(
        bundle=args.bundle,
        text=args.text,
        level=generator.manifest.get("level"),
        streams=args.streams,
        seconds=round(seconds, 2),
        tokens_per_second=round(tokens / max(seconds, 1e-9)),
    )
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
