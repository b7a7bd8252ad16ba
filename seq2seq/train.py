"""Train an attention RNN translator: ``python -m seq2seq.train``.

With no arguments it trains a small demo model on a Spanish->English corpus shipped with the
package, exports it, and prints validation BLEU and sample translations. With a corpus::

    python -m seq2seq.train --config configs/bible-es-en.yaml \\
        --train-src train.es --train-tgt train.en --valid-src dev.es --valid-tgt dev.en \\
        --out runs/bible --max-minutes 30

Without ``--valid-src/--valid-tgt`` the last ``valid_fraction`` of the training pairs is held
out for validation. ``--resume`` continues a run exactly where it stopped (Ctrl-C saves
first). The flags common to every family's ``train`` come from
:class:`seq2seq.core.cli.TrainCommand`.
"""

from __future__ import annotations

import os
import sys
import time

from seq2seq.core.cli import TrainCommand

DEMO_OUT = os.path.join("runs", "demo-translation")
DEMO_SETTINGS = {
    # small enough to train, export and score in about 6.5 minutes on 2 CPU cores
    "vocab_size": 4000,
    "embedding_size": 256,
    "hidden_size": 256,
    "batch_tokens": 2048,
    "learning_rate": 3e-3,
    "warmup_steps": 100,
    "eval_every": 200,
    "max_minutes": 6.0,
}


def demo_settings() -> dict:
    from seq2seq.core.text_files import default_corpus_path

    return {
        **DEMO_SETTINGS,
        "train_src": default_corpus_path("seq2seq", "train.es.gz"),
        "train_tgt": default_corpus_path("seq2seq", "train.en.gz"),
        "valid_src": default_corpus_path("seq2seq", "dev.es.gz"),
        "valid_tgt": default_corpus_path("seq2seq", "dev.en.gz"),
    }


def read_data(config, log) -> tuple[list[str], list[str], list[str], list[str]]:
    """Training and validation pairs: the validation files, or a tail held out of the
    training pairs."""
    from seq2seq.config import MAX_HELD_OUT_PAIRS
    from seq2seq.data import read_parallel, split_held_out

    if not (config.train_src and config.train_tgt):
        flags = [
            f
            for f, v in (("--train-src", config.train_src), ("--train-tgt", config.train_tgt))
            if not v
        ]
        raise ValueError(f"missing {' and '.join(flags)} (or set them in the --config file)")
    train_src, train_tgt = read_parallel(config.train_src, config.train_tgt)
    if config.valid_src:
        valid_src, valid_tgt = read_parallel(config.valid_src, config.valid_tgt)
        return train_src, train_tgt, valid_src, valid_tgt
    fraction = min(config.valid_fraction, MAX_HELD_OUT_PAIRS / len(train_src))
    train_src, train_tgt, valid_src, valid_tgt = split_held_out(
        train_src, train_tgt, fraction, config.train_src
    )
    log(
        f"validation: no --valid-src/--valid-tgt, so the last {len(valid_src)} of the "
        f"{len(train_src) + len(valid_src)} training pairs are held out (valid_fraction "
        f"{config.valid_fraction:g}, at most {MAX_HELD_OUT_PAIRS})"
    )
    return train_src, train_tgt, valid_src, valid_tgt


def make_task(config, run_dir: str, device, log):
    from seq2seq.model import build_model
    from seq2seq.task import TranslationTask
    from seq2seq.vocabulary import prepare_tokenizers

    train_src, train_tgt, valid_src, valid_tgt = read_data(config, log)
    source_tokenizer, target_tokenizer = prepare_tokenizers(
        config, train_src, train_tgt, run_dir, log
    )
    model = build_model(config, source_tokenizer.vocab_size, target_tokenizer.vocab_size)
    model.to(device)
    parameters = sum(p.numel() for p in model.parameters())
    log(
        f"model: {config.cell} {config.encoder_layers}+{config.decoder_layers} layers, hidden "
        f"{config.hidden_size}, {parameters / 1e6:.1f}M parameters, on {device}"
    )
    return TranslationTask(
        config,
        model,
        source_tokenizer,
        target_tokenizer,
        train_src,
        train_tgt,
        valid_src,
        valid_tgt,
        log=log,
    )


def report(config, run_dir: str, task, log) -> int:
    """Export best.pt to RUN_DIR/bundle, then score the validation set with the ONNX runtime."""
    from export.runtime import Translator
    from export.translation import export_translation
    from seq2seq.core.checkpoint import load_checkpoint
    from seq2seq.scoring import corpus_scores

    bundle = os.path.join(run_dir, "bundle")
    best = os.path.join(run_dir, "best.pt")
    export_translation(load_checkpoint(best, expected_kind="translation"), bundle)
    translator = Translator.load(bundle)
    sources, references = task.valid_src, task.valid_tgt
    started = time.monotonic()
    translations = translator.translate(sources, beam=5, batch_size=32, truncate=True)
    seconds = time.monotonic() - started
    scores = corpus_scores([t.text for t in translations], references)
    log(
        f"\nvalidation BLEU {scores['bleu']:.2f}, chrF {scores['chrf']:.2f} (beam 5, ONNX "
        f"runtime, {len(sources) / seconds:.1f} sentences/s)  {scores['bleu_signature']}"
    )
    log("\nsample translations (validation set):")
    for i in range(min(3, len(sources))):
        log(
            f"  source:    {sources[i]}\n  output:    {translations[i].text}\n"
            f"  reference: {references[i]}\n"
        )
    log(f"run directory: {run_dir} (config.yaml, metrics.jsonl, curves.png, last.pt, best.pt)")
    log(
        f"bundle:        {bundle}   try: echo 'Dios es amor.' | python -m seq2seq.translate "
        f"--bundle {bundle} --beam 5"
    )
    return 0


def translation_command():
    from seq2seq.config import TranslationConfig

    return TrainCommand(
        prog="python -m seq2seq.train",
        description="Train an attention encoder-decoder RNN translator, export it to an ONNX "
        "bundle, and report validation BLEU. With no arguments: the built-in demo.",
        config_class=TranslationConfig,
        data_keys=("train_src", "train_tgt", "valid_src", "valid_tgt"),
        demo_out=DEMO_OUT,
        demo_settings=demo_settings,
        demo_message="demo: training a small Spanish->English model on the corpus shipped "
        "with the package, for {minutes} minutes, into {run_dir}",
        make_task=make_task,
        report=report,
    )


def main(argv=None) -> int:
    return translation_command().main(argv)


if __name__ == "__main__":
    sys.exit(main())
