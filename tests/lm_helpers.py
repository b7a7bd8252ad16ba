"""Tiny language models, texts, checkpoints and bundles for the language-model tests.

Everything is made here from seeds; nothing is read from outside the repository.
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

WORDS = (
    "the king queen lord lady good sweet night day love hath doth thou thee my our is was "
    "shall will come go speak hear see know fair true"
).split()


def make_text(lines: int = 60, seed: int = 0) -> str:
    """A deterministic text of ``lines`` lines of 3 to 8 words, some ending in punctuation."""
    rng = random.Random(seed)
    out = []
    for _ in range(lines):
        words = [rng.choice(WORDS) for _ in range(rng.randint(3, 8))]
        out.append(" ".join(words) + rng.choice(["", "", ",", ".", "!", "?"]))
    return "\n".join(out) + "\n"


TEXT = make_text()


def lm_config(**overrides):
    """A LanguageModelConfig for a model small enough to build and export in well under a
    second."""
    from generate.config import LanguageModelConfig
    from seq2seq.core.config import update_config

    settings = dict(
        embedding_size=8,
        hidden_size=16,
        layers=2,
        dropout=0.0,
        embedding_dropout=0.0,
        batch_size=4,
        bptt=16,
        amp="off",  # float32 on every CPU, so the tests mean the same everywhere
    )
    settings.update(overrides)
    return update_config(LanguageModelConfig(), settings, "test")


def make_tokenizer(level: str, directory: Path | None = None):
    """A tokenizer of ``TEXT`` for ``level`` (subword needs a ``directory`` for sentencepiece)."""
    from generate.vocabulary import build_tokenizer

    config = lm_config(level=level, word_min_count=1, subword_vocab_size=60)
    return build_tokenizer(config, TEXT, str(directory or ""), log=lambda *_: None)


def random_language_model(config, tokenizer, seed: int = 0, scale: float = 0.5):
    """An RNNLanguageModel with every parameter drawn from N(0, scale), in eval mode: its
    distributions are peaked enough that torch and ONNX never disagree on an argmax through
    rounding."""
    import torch

    from generate.model import build_model

    torch.manual_seed(seed)
    model = build_model(config, tokenizer.vocab_size)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, scale)
    return model.eval()


def checkpoint_payload(config, model, tokenizer, unknown_trained: bool = False) -> dict:
    """What the trainer writes to best.pt for a language model."""
    from generate.task import LanguageModelTask
    from seq2seq.core.checkpoint import checkpoint_payload as payload

    extras = LanguageModelTask.extras_for(config, tokenizer, unknown_trained)
    return payload("language_model", config, model.state_dict(), extras, progress={"step": 0})


@dataclasses.dataclass
class ExportedLM:
    config: object
    model: object  # the torch RNNLanguageModel, in eval mode
    tokenizer: object
    checkpoint: str
    bundle: str


def export_random_lm(
    directory: Path,
    level: str = "char",
    seed: int = 0,
    quantize: str | None = None,
    unknown_trained: bool = False,
    **overrides,
) -> ExportedLM:
    """Build a random language model, save its checkpoint, export it with ``python -m
    export``."""
    from export.__main__ import main as export_main
    from seq2seq.core.checkpoint import save_checkpoint

    directory.mkdir(parents=True, exist_ok=True)
    config = lm_config(level=level, **overrides)
    tokenizer = make_tokenizer(level, directory)
    model = random_language_model(config, tokenizer, seed)
    checkpoint = str(directory / "best.pt")
    save_checkpoint(checkpoint_payload(config, model, tokenizer, unknown_trained), checkpoint)
    bundle = str(directory / "bundle")
    argv = ["--checkpoint", checkpoint, "--out", bundle]
    if quantize:
        argv += ["--quantize", quantize]
    assert export_main(argv) == 0
    return ExportedLM(config, model, tokenizer, checkpoint, bundle)
