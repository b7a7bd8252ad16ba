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
    from seq2seq.config import TranslationConfig, update_config

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
        tie_output_embeddings=False,
        max_length=12,
    )
    settings.update(overrides)
    return update_config(TranslationConfig(), settings, "test")


def word_tokenizers():
    from export.tokenizers import WordTokenizer

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
    """What ``Trainer._payload(full=False)`` writes for a translation model (best.pt)."""
    return {
        "format": 1,
        "kind": "translation",
        "config": dataclasses.asdict(config),
        "model": model.state_dict(),
        "extras": {
            "source_tokenizer": source.state(),
            "target_tokenizer": target.state(),
            "max_source_length": config.max_length,
        },
        "progress": {
            "step": 0,
            "epoch": 1,
            "batch_index": 0,
            "elapsed": 0.0,
            "best_value": None,
            "best_step": 0,
            "bad_evaluations": 0,
        },
    }


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
    from seq2seq.checkpoint import save_checkpoint

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
