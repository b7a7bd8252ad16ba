"""Train an RNN language model: ``python -m generate.train``.

With no arguments it trains a small character-level model on a public-domain text shipped with
the package (a few minutes on 2 CPU cores), exports it, and prints the validation figures and a
sample. With your own text::

    python -m generate.train --text corpus.txt --level word --out runs/my-lm
    python -m generate.train --config configs/shakespeare-char.yaml \\
        --train train.txt --valid valid.txt --out runs/shakespeare-char --max-minutes 30

``--resume`` continues a run exactly where it stopped (Ctrl-C saves first).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time

DEMO_OUT = os.path.join("runs", "demo-lm")
DEMO_TEXT = "shakespeare.txt.gz"
DEMO_SETTINGS = {
    # the default model on a 270 KB text: about 8 passes in 3 minutes on 2 cores, so more dropout
    "valid_fraction": 0.1,
    "dropout": 0.25,
    "eval_every": 200,
    "max_minutes": 3.0,
}


def parse_args(argv):
    from generate.config import LanguageModelConfig
    from seq2seq.config import add_config_arguments

    parser = argparse.ArgumentParser(
        prog="python -m generate.train",
        description="Train a char-, word- or subword-level RNN language model, export it to an "
        "ONNX bundle, and report bits per character and per-word perplexity on the validation "
        "text. With no arguments: the built-in demo.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--config", help="YAML config file (any config key below)")
    parser.add_argument("--out", help=f"run directory (default for the demo: {DEMO_OUT})")
    parser.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its last.pt, exactly"
    )
    parser.add_argument(
        "--no-export",
        action="store_true",
        help="skip exporting RUN_DIR/bundle (and the sample) at the end",
    )
    add_config_arguments(parser, LanguageModelConfig)
    return parser.parse_args(argv)


def build_config(args):
    """The run's config, its directory, and whether it is the demo."""
    from generate.config import LanguageModelConfig
    from seq2seq.config import config_from_dict, load_yaml, resolve_config, update_config
    from seq2seq.data import default_corpus_path

    given_data = args.text or args.train or args.valid
    demo = not args.config and not given_data and not args.resume
    out = args.out or (DEMO_OUT if demo else None)
    if out is None:
        raise ValueError(
            "--out RUN_DIR is required (the run's checkpoints, metrics and bundle go there)"
        )
    if args.resume:
        saved = os.path.join(out, "config.yaml")
        if not os.path.exists(saved):
            raise ValueError(f"--resume: {saved} does not exist; is {out} a run directory?")
        base = config_from_dict(LanguageModelConfig, load_yaml(saved), saved)
        return resolve_config(LanguageModelConfig, args.config, args, base=base), out, False
    base = LanguageModelConfig()
    if demo:
        base = update_config(
            base,
            {**DEMO_SETTINGS, "text": default_corpus_path("generate", DEMO_TEXT)},
            "demo settings",
        )
    return resolve_config(LanguageModelConfig, args.config, args, base=base), out, demo


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return run(args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def run(args) -> int:
    config, run_dir, demo = build_config(args)
    if not args.resume and os.path.exists(os.path.join(run_dir, "last.pt")):
        raise ValueError(
            f"{run_dir} already holds a run; pass --resume to continue it, or choose another --out"
        )
    from generate.data import load_texts

    train_text, valid_text, description = load_texts(config)
    import numpy as np
    import torch

    from generate.model import build_model
    from generate.task import LanguageModelTask
    from generate.vocabulary import build_tokenizer
    from seq2seq.trainer import Trainer, TrainingDiverged, resolve_device

    log = print
    if demo:
        log(
            f"demo: training a small character-level model on Shakespeare (shipped with the "
            f"package) for {config.max_minutes:g} minutes, into {run_dir}"
        )
    log(f"data: {description}")
    if config.threads:
        torch.set_num_threads(config.threads)
    device = resolve_device(config.device)
    os.makedirs(run_dir, exist_ok=True)
    tokenizer = build_tokenizer(config, train_text, run_dir, log)

    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)
    model = build_model(config, tokenizer.vocab_size).to(device)
    parameters = sum(p.numel() for p in model.parameters())
    log(
        f"model: {config.layers}-layer {config.cell}, hidden {config.hidden_size}, embedding "
        f"{config.embedding_size}{', tied' if config.tie_embeddings else ''}, "
        f"{parameters / 1e6:.2f}M parameters, on {device}"
    )
    task = LanguageModelTask(config, model, tokenizer, train_text, valid_text, log=log)
    trainer = Trainer(task, config, run_dir)
    try:
        trainer.train(resume=args.resume)
    except TrainingDiverged as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if trainer._interrupted:
        log(
            f"saved {trainer.last_path}; continue with: python -m generate.train --out "
            f"{run_dir} --resume"
        )
        return 130
    if args.no_export:
        return 0
    return report(config, run_dir, valid_text, log)


def report(config, run_dir: str, valid_text: str, log) -> int:
    """Export best.pt to RUN_DIR/bundle, score the validation text with the ONNX runtime, and
    stream a sample."""
    from export.exporter import export_checkpoint
    from export.runtime import Generator
    from generate.scores import text_scores

    bundle = os.path.join(run_dir, "bundle")
    export_checkpoint(os.path.join(run_dir, "best.pt"), bundle)
    generator = Generator.load(bundle)
    started = time.monotonic()
    nll, tokens = generator.score(valid_text, streams=config.eval_streams)
    seconds = time.monotonic() - started
    scores = text_scores(nll, tokens, valid_text)
    log(
        f"\nvalidation (best.pt, ONNX runtime, {seconds:.1f} s): "
        f"{scores['bits_per_char']:.3f} bits per character, per-word perplexity "
        f"{scores['perplexity_per_word']:.1f} ({tokens:,} tokens, {scores['words']:,} words)"
    )
    # an empty prompt starts at the beginning of a line; a text without line breaks has none
    prompt = "" if generator.newline_id is not None else valid_text.split()[0]
    log(f"\nsample (prompt {prompt!r}, temperature 0.8, seed 1):\n")
    sys.stdout.write(prompt)
    max_tokens = 500 if config.level == "char" else 120
    for piece in generator.stream(prompt, max_tokens=max_tokens, temperature=0.8, seed=1):
        sys.stdout.write(piece)
        sys.stdout.flush()
    log(f"\n\nrun directory: {run_dir} (config.yaml, metrics.jsonl, curves.png, last.pt, best.pt)")
    log(
        f'bundle:        {bundle}   try: python -m generate.sample --bundle {bundle} --prompt "..."'
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
