"""Shared fixtures: tiny vocabularies, random translation models, their checkpoints and bundles.

Everything is made here, from seeds; nothing is read from outside the repository. Session-scoped
fixtures build each model and bundle once; tests that damage a bundle copy it first.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the package need not be installed to run the tests
    sys.path.insert(0, str(ROOT))

SOURCE_WORDS = (
    "el la un una gato perro casa mesa come bebe corre duerme grande pequeño rojo azul "
    "en sobre con y muy hoy"
).split()
TARGET_WORDS = (
    "the a cat dog house table eats drinks runs sleeps big small red blue in on with and very today"
).split()

# Source sentences for translation tests: lengths 1 to 12 words, some repeated words.
SENTENCES = [
    "gato",
    "el perro come",
    "la casa grande y roja",
    "un gato pequeño duerme en la mesa",
    "el perro azul corre muy rápido hoy con un gato",
    "una mesa",
    "el gato come y el perro bebe en la casa grande hoy",
    "perro perro perro",
]


def tiny_config(**overrides):
    """A TranslationConfig for a model small enough to build and export in well under a second."""
    from seq2seq.config import TranslationConfig
    from seq2seq.core.config import update_config

    settings = dict(
        cell="lstm",
        embedding_size=16,
        hidden_size=16,
        encoder_layers=2,
        decoder_layers=2,
        bidirectional=True,
        attention="general",
        dropout=0.0,
        embedding_dropout=0.0,
        tie_embeddings=False,
        max_length=12,
        amp="off",  # float32 on every CPU, so the tests mean the same everywhere
    )
    settings.update(overrides)
    return update_config(TranslationConfig(), settings, "test")


def word_tokenizers():
    from export.runtime.tokenizers import WordTokenizer

    source = WordTokenizer.build(" ".join(SOURCE_WORDS), min_count=1)
    target = WordTokenizer.build(" ".join(TARGET_WORDS), min_count=1)
    return source, target


def random_model(config, source, target, seed: int = 0, scale: float = 0.5):
    """A Seq2SeqModel with every parameter drawn from N(0, scale): its output distributions are
    peaked enough that torch and ONNX never disagree on an argmax through rounding."""
    import torch

    from seq2seq.model import build_model

    torch.manual_seed(seed)
    model = build_model(config, source.vocab_size, target.vocab_size)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, scale)
    return model.eval()


def checkpoint_payload(config, model, source, target) -> dict:
    """What the trainer writes to best.pt for a translation model."""
    from seq2seq.core.checkpoint import checkpoint_payload as payload
    from seq2seq.task import TranslationTask

    extras = TranslationTask.extras_for(config, source, target)
    return payload("translation", config, model.state_dict(), extras, progress={"step": 0})


@dataclasses.dataclass
class ExportedModel:
    config: object
    model: object  # the torch Seq2SeqModel, in eval mode
    source: object
    target: object
    checkpoint: str
    bundle: str


def export_random_model(
    directory: Path, seed: int = 0, quantize: str | None = None, **overrides
) -> ExportedModel:
    """Build a random model, save its checkpoint, export it with ``python -m export``."""
    from export.__main__ import main as export_main
    from seq2seq.core.checkpoint import save_checkpoint

    config = tiny_config(**overrides)
    source, target = word_tokenizers()
    model = random_model(config, source, target, seed)
    directory.mkdir(parents=True, exist_ok=True)
    checkpoint = str(directory / "best.pt")
    save_checkpoint(checkpoint_payload(config, model, source, target), checkpoint)
    bundle = str(directory / "bundle")
    argv = ["--checkpoint", checkpoint, "--out", bundle]
    if quantize:
        argv += ["--quantize", quantize]
    assert export_main(argv) == 0
    return ExportedModel(config, model, source, target, checkpoint, bundle)


# A synthetic parallel corpus for training tests: 16 pairs of 6 to 10 invented words; the target
# is a word-for-word rendering of the source in reverse order.
CORPUS_SOURCE_WORDS = (
    "kala mori tesu nabe rilo pami soka dune feli garo hina jupe kovi lume nesa poru quin "
    "rata sevi toma"
).split()
CORPUS_TARGET_WORDS = (
    "stone river cloud bread light green quick small house night field water sound black "
    "plain sharp round sweet grass flame"
).split()


def synthetic_corpus(pairs: int = 16, seed: int = 0) -> tuple[list[str], list[str]]:
    import numpy as np

    rng = np.random.default_rng(seed)
    source, target = [], []
    for _ in range(pairs):
        words = rng.choice(len(CORPUS_SOURCE_WORDS), size=int(rng.integers(6, 11)))
        source.append(" ".join(CORPUS_SOURCE_WORDS[w] for w in words))
        target.append(" ".join(CORPUS_TARGET_WORDS[w] for w in words[::-1]))
    return source, target


def write_corpus(directory: Path, pairs: int = 16) -> dict:
    """Write the synthetic corpus as training files (validated on themselves: these tests
    measure memorisation); return the paths."""
    source, target = synthetic_corpus(pairs)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, lines in (("src", source), ("tgt", target)):
        path = directory / f"train.{name}"
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        paths[name] = str(path)
    return paths


def train_argv(corpus: dict, out, **settings) -> list[str]:
    """Command-line arguments for ``seq2seq.train.main``: a tiny, quick model on ``corpus``;
    ``settings`` (config keys) override the defaults here."""
    values = dict(
        vocab_size=60,
        embedding_size=32,
        hidden_size=32,
        encoder_layers=1,
        decoder_layers=1,
        dropout=0.0,
        embedding_dropout=0.0,
        batch_tokens=4096,
        label_smoothing=0.0,
        learning_rate=0.01,
        log_every=1,
        eval_every=1000,
        progress=False,
        max_steps=10,
        amp="off",  # float32 on every CPU (amp auto picks bf16 where the CPU has it)
    )
    values.update(settings)
    argv = [
        "--train-src",
        corpus["src"],
        "--train-tgt",
        corpus["tgt"],
        "--valid-src",
        corpus["src"],
        "--valid-tgt",
        corpus["tgt"],
        "--out",
        str(out),
    ]
    for key, value in values.items():
        argv += ["--" + key.replace("_", "-"), str(value)]
    return argv


def read_metrics(run_dir, split: str = "train") -> list[dict]:
    import json

    with open(Path(run_dir) / "metrics.jsonl", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    return [row for row in rows if row["split"] == split]


@pytest.fixture(scope="session", autouse=True)
def _few_threads():
    """Two CPU cores are shared with other work: one torch thread is enough for tiny models."""
    import torch

    torch.set_num_threads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def exported_lstm(tmp_path_factory) -> ExportedModel:
    """A random 2-layer bidirectional LSTM translator, its checkpoint and its bundle."""
    return export_random_model(tmp_path_factory.mktemp("lstm"))


@pytest.fixture(scope="session")
def translation_bundle(exported_lstm) -> str:
    return exported_lstm.bundle
