"""Train an attention RNN translator: ``python -m seq2seq.train``.

With no arguments it trains a small demo model on a Spanish->English corpus shipped with the
package, exports it, and prints dev BLEU and sample translations. With a corpus::

    python -m seq2seq.train --config configs/bible-es-en.yaml \\
        --train-src train.es --train-tgt train.en --dev-src dev.es --dev-tgt dev.en \\
        --out runs/bible --max-minutes 30

``--resume`` continues a run exactly where it stopped (Ctrl-C saves first).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time

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


def parse_args(argv):
    from seq2seq.config import TranslationConfig, add_config_arguments

    parser = argparse.ArgumentParser(
        prog="python -m seq2seq.train",
        description="Train an attention encoder-decoder RNN translator, export it to an ONNX "
        "bundle, and report dev BLEU. With no arguments: the built-in demo.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--config", help="YAML config file (any config key below)")
    parser.add_argument("--out", help=f"run directory (default for the demo: {DEMO_OUT})")
    parser.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its last.pt, exactly"
    )
    parser.add_argument(
        "--no-export", action="store_true", help="skip exporting RUN_DIR/bundle at the end"
    )
    add_config_arguments(parser, TranslationConfig)
    return parser.parse_args(argv)


def prepare_tokenizers(config, run_dir: str, log):
    """Train sentencepiece on the training data (or reuse the run's models when resuming)."""
    from export.tokenizers import SentencePieceTokenizer

    directory = os.path.join(run_dir, "spm")
    os.makedirs(directory, exist_ok=True)
    common = dict(vocab_size=config.vocab_size, model_type=config.spm_model_type)
    if config.joint_vocab:
        path = os.path.join(directory, "joint.model")
        if not os.path.exists(path):
            log(f"training a joint sentencepiece model ({config.vocab_size} pieces)")
            SentencePieceTokenizer.train(
                [config.train_src, config.train_tgt], path[: -len(".model")], **common
            )
        tokenizer = SentencePieceTokenizer.from_file(path)
        if config.target_pieces == "all":
            return tokenizer, tokenizer
        return tokenizer, target_subset(tokenizer, config.train_tgt, directory, log)
    tokenizers = []
    for side, data in (("source", config.train_src), ("target", config.train_tgt)):
        path = os.path.join(directory, f"{side}.model")
        if not os.path.exists(path):
            log(f"training the {side} sentencepiece model ({config.vocab_size} pieces)")
            SentencePieceTokenizer.train([data], path[: -len(".model")], **common)
        tokenizers.append(SentencePieceTokenizer.from_file(path))
    return tokenizers[0], tokenizers[1]


def target_subset(tokenizer, train_tgt: str, directory: str, log):
    """The joint model restricted to the pieces of the training targets (computed once per
    run and kept in ``spm/target.pieces.json``, so a resumed run uses the same ids)."""
    from export.tokenizers import SentencePieceSubsetTokenizer
    from seq2seq.data import read_lines

    path = os.path.join(directory, "target.pieces.json")
    if os.path.exists(path):
        return SentencePieceSubsetTokenizer.load_files(os.path.join(directory, "joint.model"), path)
    subset = SentencePieceSubsetTokenizer.from_text(tokenizer, read_lines(train_tgt))
    log(
        f"target side: {subset.vocab_size} of the {tokenizer.vocab_size} joint pieces "
        "(those seen in the training targets, and every single character)"
    )
    subset.save_pieces(path)
    return subset


def build_config(args):
    from seq2seq.config import TranslationConfig, config_from_dict, load_yaml, resolve_config
    from seq2seq.data import default_corpus_path

    demo = not args.config and not args.train_src and not args.resume
    out = args.out or (DEMO_OUT if demo else None)
    if out is None:
        raise ValueError(
            "--out RUN_DIR is required (the run's checkpoints, metrics and bundle go there)"
        )
    if args.resume:
        saved = os.path.join(out, "config.yaml")
        if not os.path.exists(saved):
            raise ValueError(f"--resume: {saved} does not exist; is {out} a run directory?")
        base = config_from_dict(TranslationConfig, load_yaml(saved), saved)
        return resolve_config(TranslationConfig, args.config, args, base=base), out, False
    base = TranslationConfig()
    if demo:
        from seq2seq.config import update_config

        base = update_config(
            base,
            {
                **DEMO_SETTINGS,
                "train_src": default_corpus_path("seq2seq", "train.es.gz"),
                "train_tgt": default_corpus_path("seq2seq", "train.en.gz"),
                "dev_src": default_corpus_path("seq2seq", "dev.es.gz"),
                "dev_tgt": default_corpus_path("seq2seq", "dev.en.gz"),
            },
            "demo settings",
        )
    config = resolve_config(TranslationConfig, args.config, args, base=base)
    if config.share_embeddings and not (config.joint_vocab and config.target_pieces == "all"):
        raise ValueError(
            "share_embeddings needs one vocabulary for both sides: set joint_vocab true and "
            "target_pieces all"
        )
    missing = [
        k for k in ("train_src", "train_tgt", "dev_src", "dev_tgt") if not getattr(config, k)
    ]
    if missing:
        flags = ", ".join("--" + k.replace("_", "-") for k in missing)
        raise ValueError(f"missing {flags} (or set them in the --config file)")
    return config, out, demo


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
    import numpy as np
    import torch

    from seq2seq.data import read_parallel
    from seq2seq.model import build_model
    from seq2seq.trainer import Trainer, TrainingDiverged, resolve_device
    from seq2seq.translation_task import TranslationTask

    log = print
    if demo:
        log(
            f"demo: training a small Spanish->English model on the corpus shipped with the "
            f"package, for {config.max_minutes:g} minutes, into {run_dir}"
        )
    if config.threads:
        torch.set_num_threads(config.threads)
    device = resolve_device(config.device)
    train_src, train_tgt = read_parallel(config.train_src, config.train_tgt)
    dev_src, dev_tgt = read_parallel(config.dev_src, config.dev_tgt)
    os.makedirs(run_dir, exist_ok=True)
    source_tokenizer, target_tokenizer = prepare_tokenizers(config, run_dir, log)

    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)
    model = build_model(config, source_tokenizer.vocab_size, target_tokenizer.vocab_size)
    model.to(device)
    parameters = sum(p.numel() for p in model.parameters())
    log(
        f"model: {config.cell} {config.encoder_layers}+{config.decoder_layers} layers, hidden "
        f"{config.hidden_size}, {parameters / 1e6:.1f}M parameters, on {device}"
    )
    task = TranslationTask(
        config,
        model,
        source_tokenizer,
        target_tokenizer,
        train_src,
        train_tgt,
        dev_src,
        dev_tgt,
        log=log,
    )
    trainer = Trainer(task, config, run_dir)
    try:
        trainer.train(resume=args.resume)
    except TrainingDiverged as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if trainer._interrupted:
        log(
            f"saved {trainer.last_path}; continue with: python -m seq2seq.train --out "
            f"{run_dir} --resume"
        )
        return 130
    if args.no_export:
        return 0
    return report(config, run_dir, dev_src, dev_tgt, log)


def report(config, run_dir: str, dev_src, dev_tgt, log) -> int:
    """Export best.pt to RUN_DIR/bundle, then score dev with the ONNX runtime."""
    from export.exporter import export_checkpoint
    from export.runtime import Translator
    from seq2seq.scoring import corpus_scores

    bundle = os.path.join(run_dir, "bundle")
    export_checkpoint(os.path.join(run_dir, "best.pt"), bundle)
    translator = Translator.load(bundle)
    started = time.monotonic()
    translations = translator.translate(dev_src, beam=5, batch_size=32, truncate=True)
    seconds = time.monotonic() - started
    scores = corpus_scores([t.text for t in translations], dev_tgt)
    log(
        f"\ndev BLEU {scores['bleu']:.2f}, chrF {scores['chrf']:.2f} (beam 5, ONNX runtime, "
        f"{len(dev_src) / seconds:.1f} sentences/s)  {scores['bleu_signature']}"
    )
    log("\nsample translations (dev):")
    for i in range(min(3, len(dev_src))):
        log(
            f"  source:    {dev_src[i]}\n  output:    {translations[i].text}\n"
            f"  reference: {dev_tgt[i]}\n"
        )
    log(f"run directory: {run_dir} (config.yaml, metrics.jsonl, curves.png, last.pt, best.pt)")
    log(
        f"bundle:        {bundle}   try: echo 'Dios es amor.' | python -m seq2seq.translate "
        f"--bundle {bundle} --beam 5"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
