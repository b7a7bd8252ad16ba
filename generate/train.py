"""Train an RNN language model: ``python -m generate.train``.

With no arguments it trains a small character-level model on a public-domain text shipped with
the package (a few minutes on 2 CPU cores), exports it, and prints the validation figures and a
sample. With your own text::

    python -m generate.train --text corpus.txt --level word --out runs/my-lm
    python -m generate.train --config configs/shakespeare-char.yaml \\
        --train train.txt --valid valid.txt --out runs/shakespeare-char --max-minutes 30

``--resume`` continues a run exactly where it stopped (Ctrl-C saves first). The flags common
to every family's ``train`` come from :class:`seq2seq.core.cli.TrainCommand`.
"""

from __future__ import annotations

import os
import sys
import time

from seq2seq.core.cli import TrainCommand

DEMO_OUT = os.path.join("runs", "demo-lm")
DEMO_TEXT = "shakespeare.txt.gz"
DEMO_SETTINGS = {
    # the default model on a 270 KB text: about 8 passes in 3 minutes on 2 cores, so more dropout
    "valid_fraction": 0.1,
    "dropout": 0.25,
    "eval_every": 200,
    "max_minutes": 3.0,
}


def demo_settings() -> dict:
    from seq2seq.core.text_files import default_corpus_path

    return {**DEMO_SETTINGS, "text": default_corpus_path("generate", DEMO_TEXT)}


def make_task(config, run_dir: str, device, log):
    from generate.data import load_texts
    from generate.model import build_model
    from generate.task import LanguageModelTask
    from generate.vocabulary import build_tokenizer

    train_text, valid_text, description = load_texts(config)
    log(f"data: {description}")
    tokenizer = build_tokenizer(config, train_text, run_dir, log)
    model = build_model(config, tokenizer.vocab_size).to(device)
    parameters = sum(p.numel() for p in model.parameters())
    log(
        f"model: {config.layers}-layer {config.cell}, hidden {config.hidden_size}, embedding "
        f"{config.embedding_size}{', tied' if config.tie_embeddings else ''}, "
        f"{parameters / 1e6:.2f}M parameters, on {device}"
    )
    return LanguageModelTask(config, model, tokenizer, train_text, valid_text, log=log)


def report(config, run_dir: str, task, log) -> int:
    """Export best.pt to RUN_DIR/bundle, score the validation text with the ONNX runtime, and
    stream a sample."""
    from export.language_model import export_language_model
    from export.runtime import Generator
    from generate.scores import text_scores
    from seq2seq.core.checkpoint import load_checkpoint

    valid_text = task.valid_text
    bundle = os.path.join(run_dir, "bundle")
    best = os.path.join(run_dir, "best.pt")
    export_language_model(load_checkpoint(best, expected_kind="language_model"), bundle)
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


def language_model_command():
    from generate.config import LanguageModelConfig

    return TrainCommand(
        prog="python -m generate.train",
        description="Train a char-, word- or subword-level RNN language model, export it to an "
        "ONNX bundle, and report bits per character and per-word perplexity on the validation "
        "text. With no arguments: the built-in demo.",
        config_class=LanguageModelConfig,
        data_keys=("text", "train", "valid"),
        demo_out=DEMO_OUT,
        demo_settings=demo_settings,
        demo_message="demo: training a small character-level model on Shakespeare (shipped "
        "with the package) for {minutes} minutes, into {run_dir}",
        make_task=make_task,
        report=report,
    )


def main(argv=None) -> int:
    return language_model_command().main(argv)


if __name__ == "__main__":
    sys.exit(main())
