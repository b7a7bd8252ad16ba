"""The configuration of a translation run: data, vocabulary, model, evaluation.

Extends the training-loop settings of :class:`seq2seq.core.config.TrainingConfig`; filled from
defaults < YAML < command line. Every key is documented in docs/config.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from seq2seq.core.config import TrainingConfig, option

# a held-out validation tail is decoded at every evaluation: keep it small on big corpora
MAX_HELD_OUT_PAIRS = 2000


@dataclass
class TranslationConfig(TrainingConfig):
    """Everything a translation run needs: data, vocabulary, model, training, evaluation."""

    renamed_keys: ClassVar[dict[str, str]] = {
        "dev_src": "valid_src",
        "dev_tgt": "valid_tgt",
        "tie_output_embeddings": "tie_embeddings",
    }

    # --- data ---
    train_src: str = option("", "training source file, one sentence per line")
    train_tgt: str = option("", "training target file, line-aligned with train_src")
    valid_src: str = option(
        "",
        "validation source file (model selection, early stopping); without it the last "
        "valid_fraction of the training pairs is held out",
    )
    valid_tgt: str = option("", "validation target file, line-aligned with valid_src")
    valid_fraction: float = option(
        0.02,
        f"without valid_src/valid_tgt: the share of the training pairs held out for "
        f"validation (the tail, at most {MAX_HELD_OUT_PAIRS} pairs)",
        above=0,
        below=1,
    )
    max_length: int = option(
        200, "drop training pairs with a side longer than this (subwords)", minimum=1
    )
    max_length_ratio: float = option(
        0.0, "drop pairs whose length ratio exceeds this (0: off)", minimum=0
    )
    batch_tokens: int = option(
        2048,
        "tokens per batch: sentences x the longest side in the batch, padding included",
        minimum=1,
    )
    # --- vocabulary ---
    vocab_size: int = option(
        8000, "sentencepiece vocabulary size (per side unless joint)", minimum=8
    )
    joint_vocab: bool = option(True, "one sentencepiece model for both languages")
    spm_model_type: str = option("unigram", "sentencepiece model type", ("unigram", "bpe"))
    target_pieces: str = option(
        "seen",
        "joint vocabulary: the target side (embedding and output layer) keeps only the pieces "
        "seen in the training targets, plus every single character (seen: about half of a "
        "joint vocabulary, so training and decoding are faster), or all of them",
        ("seen", "all"),
    )
    # --- model ---
    cell: str = option("lstm", "recurrent cell", ("lstm", "gru", "rnn"))
    embedding_size: int = option(256, "embedding size", minimum=1)
    hidden_size: int = option(
        256, "hidden size (a bidirectional encoder splits it in two)", minimum=1
    )
    encoder_layers: int = option(2, "encoder layers", minimum=1)
    decoder_layers: int = option(2, "decoder layers", minimum=1)
    bidirectional: bool = option(True, "bidirectional encoder")
    attention: str = option("general", "Luong attention score", ("dot", "general", "concat"))
    input_feeding: bool = option(
        False, "feed the previous attentional vector to the decoder (slower: a loop over time)"
    )
    dropout: float = option(
        0.3, "dropout between layers and on the attentional vector", minimum=0, below=1
    )
    embedding_dropout: float = option(0.1, "dropout on embeddings", minimum=0, below=1)
    tie_embeddings: bool = option(
        True, "share the target embedding with the output layer (needs embedding == hidden)"
    )
    share_embeddings: bool = option(False, "share source and target embeddings (joint vocab)")
    # --- evaluation during training ---
    eval_beam: int = option(
        1, "beam size for validation BLEU during training (1: greedy, fastest)", minimum=1
    )
    eval_batch_size: int = option(
        64, "sentences per batch when decoding the validation set", minimum=1
    )
    selection_metric: str = option(
        "bleu",
        "validation metric that picks best.pt and drives early stopping",
        ("bleu", "chrf", "nll"),
    )

    def check(self) -> None:
        super().check()
        if self.bidirectional and self.hidden_size % 2:
            raise ValueError(
                f"a bidirectional encoder needs an even hidden_size (half per direction), "
                f"got {self.hidden_size}"
            )
        if self.tie_embeddings and self.embedding_size != self.hidden_size:
            raise ValueError(
                f"tie_embeddings needs embedding_size == hidden_size ({self.embedding_size} != "
                f"{self.hidden_size}); set one to the other, or tie_embeddings false"
            )
        if self.share_embeddings and not (self.joint_vocab and self.target_pieces == "all"):
            raise ValueError(
                "share_embeddings needs one vocabulary for both sides: set joint_vocab true "
                "and target_pieces all"
            )
        if bool(self.valid_src) != bool(self.valid_tgt):
            raise ValueError("give both valid_src and valid_tgt, or neither (to hold out a tail)")
