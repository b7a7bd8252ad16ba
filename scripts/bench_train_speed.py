"""Training throughput (source + target tokens per second) on a real corpus.

Measures the toolkit's training step (forward, backward, clipping, optimizer) through the same
TranslationTask and Trainer code that `python -m seq2seq.train` runs, at the model size of the
OpenNMT-py comparison in docs/BENCHMARKS.md: 2-layer bidirectional LSTM encoder, 2-layer LSTM
decoder, 256 units, "general" attention, joint 8k sentencepiece, Adam, 2048-token batches.
Variants run one after another in the same process, several rounds interleaved, so machine
noise hits them alike; the table reports the median of the rounds.

With ``--opennmt-python`` (the python of an environment where OpenNMT-py is installed; it is
never a dependency of this project) each round also trains OpenNMT-py on the same data, with the
same sentencepiece model and model size, and the table gives every variant's speed as a ratio to
OpenNMT-py's in the same round.

    python scripts/bench_train_speed.py --data ../shared/data/bible-es-en --steps 30 \
        [--opennmt-python /path/to/onmt-venv/bin/python]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

VARIANTS = {
    # name: config overrides
    "toolkit default (no input feeding, tied output)": {},
    "untied output layer": {"tie_embeddings": False},
    "input feeding (as OpenNMT-py)": {"input_feeding": True},
    "input feeding, untied": {"input_feeding": True, "tie_embeddings": False},
    "default, all 8k pieces on the target side": {"target_pieces": "all"},
}

# OpenNMT-py's own default builds the target vocabulary from the target side only (as the
# toolkit's target_pieces: seen); share_vocab makes it score the whole joint vocabulary.
OPENNMT_VARIANTS = {
    "OpenNMT-py 3.5.1 (input feeding, target vocab from the target side)": False,
    "OpenNMT-py 3.5.1 (input feeding, shared joint vocab)": True,
}

OPENNMT_CONFIG = """\
save_data: {work}/onmt
src_vocab: {work}/{name}.vocab.src
tgt_vocab: {work}/{name}.vocab.tgt
share_vocab: {share}
overwrite: true
data:
  corpus_1:
    path_src: {src}
    path_tgt: {tgt}
    transforms: [sentencepiece]
src_subword_model: {spm}
tgt_subword_model: {spm}
src_vocab_size: 8100
tgt_vocab_size: 8100
save_model: {work}/{name}-model
encoder_type: brnn
decoder_type: rnn
rnn_type: LSTM
layers: 2
hidden_size: 256
word_vec_size: 256
global_attention: general
input_feed: 1
batch_type: tokens
batch_size: {batch_tokens}
optim: adam
learning_rate: 0.001
train_steps: {train_steps}
report_every: 10
save_checkpoint_steps: 1000000
num_workers: 0
seed: 1
"""
REPORT = re.compile(r"Step (\d+)/.*?([\d.]+)/([\d.]+) tok/s")


def opennmt_speed(python: str, config: str) -> float:
    """Train OpenNMT-py as ``config`` says; its src+tgt tokens/s over the reports after the
    first 20 updates (start-up and warm-up excluded)."""
    result = subprocess.run(
        [python, "-m", "onmt.bin.train", "-config", config],
        capture_output=True,
        text=True,
        check=True,
    )
    rates = [
        float(src) + float(tgt)
        for step, src, tgt in REPORT.findall(result.stdout + result.stderr)
        if int(step) > 20
    ]
    if not rates:
        raise RuntimeError("OpenNMT-py printed no speed reports:\n" + result.stderr[-2000:])
    return statistics.mean(rates)


def prepare_opennmt(
    python: str,
    work: str,
    name: str,
    share: bool,
    src: str,
    tgt: str,
    spm: str,
    steps: int,
    batch_tokens: int,
) -> str:
    """Write an OpenNMT-py config and build its vocabularies; returns the config's path."""
    config = os.path.join(work, f"{name}.yaml")
    with open(config, "w") as f:
        f.write(
            OPENNMT_CONFIG.format(
                work=work,
                name=name,
                share=str(share).lower(),
                src=src,
                tgt=tgt,
                spm=spm,
                batch_tokens=batch_tokens,
                train_steps=steps + 20,
            )
        )
    subprocess.run(
        [python, "-m", "onmt.bin.build_vocab", "-config", config, "-n_sample", "-1"],
        capture_output=True,
        text=True,
        check=True,
    )
    return config


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", required=True, help="folder with train.es/train.en")
    parser.add_argument("--src", default="es")
    parser.add_argument("--tgt", default="en")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per variant per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--variants", default="", help="comma-separated indices (default all)")
    parser.add_argument("--batch-tokens", type=int, default=2048)
    parser.add_argument(
        "--opennmt-python",
        default="",
        help="python of an environment with OpenNMT-py, to run it as baseline",
    )
    args = parser.parse_args()

    import torch

    from export.runtime.tokenizers import SentencePieceSubsetTokenizer
    from seq2seq.config import TranslationConfig
    from seq2seq.core.config import update_config
    from seq2seq.core.subwords import train_sentencepiece
    from seq2seq.core.trainer import Trainer
    from seq2seq.data import read_parallel
    from seq2seq.model import build_model
    from seq2seq.task import TranslationTask

    if args.threads:
        torch.set_num_threads(args.threads)
    src_path = os.path.join(args.data, f"train.{args.src}")
    tgt_path = os.path.join(args.data, f"train.{args.tgt}")
    train_src, train_tgt = read_parallel(src_path, tgt_path)
    workdir = tempfile.mkdtemp(prefix="bench-train-")
    tokenizer = train_sentencepiece(
        train_src + train_tgt, os.path.join(workdir, "spm"), vocab_size=8000
    )
    target_subset = SentencePieceSubsetTokenizer.from_text(tokenizer, train_tgt)
    base = TranslationConfig(
        train_src=src_path,
        train_tgt=tgt_path,
        vocab_size=8000,
        cell="lstm",
        embedding_size=256,
        hidden_size=256,
        encoder_layers=2,
        decoder_layers=2,
        bidirectional=True,
        attention="general",
        batch_tokens=args.batch_tokens,
        optimizer="adam",
        progress=False,
    )
    chosen = list(VARIANTS.items())
    if args.variants:
        chosen = [chosen[int(i)] for i in args.variants.split(",")]
    setups = []
    for name, overrides in chosen:
        config = update_config(base, overrides, name)
        torch.manual_seed(1)
        target = target_subset if config.target_pieces == "seen" else tokenizer
        model = build_model(config, tokenizer.vocab_size, target.vocab_size)
        task = TranslationTask(
            config, model, tokenizer, target, train_src, train_tgt, [], [], log=lambda *a: None
        )
        trainer = Trainer(task, config, os.path.join(workdir, "run"))
        batches = task.epoch_batches(1)
        setups.append((name, task, trainer, batches))
    results = {name: [] for name, *_ in setups}
    opennmt_configs = {}
    if args.opennmt_python:
        for number, (name, share) in enumerate(OPENNMT_VARIANTS.items()):
            opennmt_configs[name] = prepare_opennmt(
                args.opennmt_python,
                workdir,
                f"onmt{number}",
                share,
                src_path,
                tgt_path,
                os.path.join(workdir, "spm.model"),
                args.steps,
                args.batch_tokens,
            )
            results[name] = []
    baseline = next(iter(OPENNMT_VARIANTS))
    position = 0
    for _ in range(args.rounds):
        for name, config_path in opennmt_configs.items():
            results[name].append(opennmt_speed(args.opennmt_python, config_path))
        for name, _task, trainer, batches in setups:
            for i in range(2):  # warm-up steps, not timed
                trainer._train_step(batches[(position + i) % len(batches)])
            tokens = 0
            started = time.perf_counter()
            for i in range(args.steps):
                stats = trainer._train_step(batches[(position + 2 + i) % len(batches)])
                tokens += stats["throughput_tokens"]
            results[name].append(tokens / (time.perf_counter() - started))
        position += args.steps + 2
    print(
        f"\ntorch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{args.rounds} rounds x {args.steps} steps, same batches for every variant\n"
    )
    print(
        f"target side: {target_subset.vocab_size} of the {tokenizer.vocab_size} joint pieces; "
        f"ratios are to {baseline} in the same round\n"
    )
    print("| variant | source+target tokens/s (median) | rounds | vs OpenNMT-py (median ratio) |")
    print("|---|---:|---|---:|")
    for name, values in results.items():
        shown = ", ".join(f"{v:,.0f}" for v in values)
        ratio = ""
        if args.opennmt_python:
            ratios = [v / b for v, b in zip(values, results[baseline])]
            ratio = f"{statistics.median(ratios):.2f}x"
        print(f"| {name} | {statistics.median(values):,.0f} | {shown} | {ratio} |")


if __name__ == "__main__":
    main()
