"""The configuration of a language-model run: data, vocabulary, model, batching, evaluation.

Extends the training-loop settings of :class:`seq2seq.core.config.TrainingConfig`; filled from
defaults < YAML < command line by the same functions as translation. The defaults train a
character-level LSTM that learns fast on a 2-core CPU.
"""

from __future__ import annotations

from dataclasses import dataclass

from seq2seq.core.config import TrainingConfig, option

LEVELS = ("char", "word", "subword")


@dataclass
class LanguageModelConfig(TrainingConfig):
    """Everything a language-model run needs."""

    # --- training loop: values that suit language models better than the shared defaults ---
    learning_rate: float = option(3e-3, "peak learning rate", above=0)
    lr_patience: int = option(
        0, "plateau: evaluations without improvement before a decay", minimum=0
    )
    label_smoothing: float = option(
        0.0,
        "label smoothing of the loss (0 for language models: it inflates perplexity)",
        minimum=0,
        below=1,
    )
    eval_every: int = option(
        400, "evaluate on the validation text, and save last.pt, every N updates", minimum=1
    )
    log_every: int = option(25, "write a train line to metrics.jsonl every N updates", minimum=1)

    # --- data ---
    train: str = option("", "training text (UTF-8, plain or .gz)")
    valid: str = option("", "validation text (model selection, early stopping)")
    text: str = option(
        "",
        "a single text to use instead of train + valid: its last valid_fraction (whole "
        "lines) is split off for validation",
    )
    valid_fraction: float = option(
        0.05, "share of --text split off for validation", above=0, below=1
    )

    # --- vocabulary ---
    level: str = option("char", "the unit the model reads and writes", ("char", "word", "subword"))
    char_min_count: int = option(
        1, "char level: characters seen fewer times in training become <unk>", minimum=1
    )
    word_min_count: int = option(2, "word level: words seen fewer times become <unk>", minimum=1)
    word_max_size: int = option(
        30000, "word level: at most this many words (specials included)", minimum=5
    )
    subword_vocab_size: int = option(
        4000, "subword level: sentencepiece vocabulary size", minimum=8
    )
    spm_model_type: str = option(
        "unigram", "subword level: sentencepiece model type", ("unigram", "bpe")
    )

    # --- model ---
    cell: str = option("lstm", "recurrent cell", ("lstm", "gru", "rnn"))
    embedding_size: int = option(96, "embedding size", minimum=1)
    hidden_size: int = option(384, "hidden size of every layer", minimum=1)
    layers: int = option(2, "stacked recurrent layers", minimum=1)
    dropout: float = option(
        0.1, "locked dropout between layers and before the output layer", minimum=0, below=1
    )
    embedding_dropout: float = option(0.0, "locked dropout on the embeddings", minimum=0, below=1)
    tie_embeddings: bool = option(
        False,
        "share the embedding with the output layer (adds a hidden -> embedding "
        "projection when the sizes differ); pays off for large word/subword vocabularies",
    )

    # --- batching ---
    batch_size: int = option(
        32,
        "streams: the training text is cut into this many contiguous rows read side by side",
        minimum=1,
    )
    bptt: int = option(
        128,
        "tokens per row per update (truncated backpropagation through time); the hidden "
        "state carries over to the next window",
        minimum=1,
    )

    state_reset: float = option(
        0.05,
        "chance per row and window that the carried state restarts from zeros. Without it a "
        "model trained on endless streams can drift into states a fresh start (every prompt) "
        "never reaches, and then fails on text read from the start",
        minimum=0,
        maximum=1,
    )

    # --- evaluation ---
    eval_streams: int = option(
        16,
        "the validation text is read as this many contiguous rows side by side (fewer: "
        "slower, slightly more exact)",
        minimum=1,
    )

    def check(self) -> None:
        super().check()
        if self.text and (self.train or self.valid):
            raise ValueError("give either --text or --train and --valid, not both")
