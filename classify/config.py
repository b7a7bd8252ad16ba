"""The configuration of a text-classification run: data, tokens, model, batching.

Extends the training-loop settings of :class:`seq2seq.core.config.TrainingConfig`; filled from
defaults < YAML < command line by the same functions as the other families. The defaults train
a small bidirectional LSTM with attention pooling on subwords, regularised enough not to
overfit a few thousand labelled texts.
"""

from __future__ import annotations

from dataclasses import dataclass

from seq2seq.core.config import TrainingConfig, option

LEVELS = ("char", "word", "subword")
POOLINGS = ("last", "mean", "max", "attention")
FORMATS = ("auto", "csv", "tsv", "fasttext")


@dataclass
class ClassifierConfig(TrainingConfig):
    """Everything a text-classification run needs."""

    # --- training loop: values that suit classifiers better than the shared defaults ---
    learning_rate: float = option(2e-3, "peak learning rate", above=0)
    label_smoothing: float = option(
        0.0, "label smoothing of the cross-entropy loss", minimum=0, below=1
    )
    eval_every: int = option(
        200, "evaluate on the validation data, and save last.pt, every N updates", minimum=1
    )
    log_every: int = option(25, "write a train line to metrics.jsonl every N updates", minimum=1)

    # --- data ---
    train: str = option("", "labelled training data: CSV/TSV with a header, or fastText lines")
    valid: str = option(
        "", "labelled validation data (model selection); none: a tail of --train is held out"
    )
    valid_fraction: float = option(
        0.1,
        "share of --train held out for validation when --valid is not given",
        above=0,
        below=1,
    )
    format: str = option(
        "auto",
        "data format: auto (by extension: .csv, .tsv, .txt/.ft = fastText __label__ lines), "
        "csv, tsv or fasttext",
        FORMATS,
    )
    text_column: str = option("text", "CSV/TSV: the column holding the text")
    label_column: str = option("label", "CSV/TSV: the column holding the label")

    # --- tokens ---
    level: str = option("subword", "the unit the model reads", LEVELS)
    lowercase: bool = option(False, "lowercase every text before tokenizing (kept in the bundle)")
    char_min_count: int = option(
        2, "char level: characters seen fewer times in training become <unk>", minimum=1
    )
    word_min_count: int = option(2, "word level: words seen fewer times become <unk>", minimum=1)
    word_max_size: int = option(
        30000, "word level: at most this many words (specials included)", minimum=5
    )
    subword_vocab_size: int = option(
        8000, "subword level: sentencepiece vocabulary size", minimum=8
    )
    spm_model_type: str = option(
        "unigram", "subword level: sentencepiece model type", ("unigram", "bpe")
    )
    max_length: int = option(
        256,
        "tokens read per text: longer texts are cut to their first max_length tokens, in "
        "training and by the runtime alike (the log counts them)",
        minimum=1,
    )

    # --- model ---
    cell: str = option("lstm", "recurrent cell", ("lstm", "gru", "rnn"))
    embedding_size: int = option(128, "embedding size", minimum=1)
    hidden_size: int = option(192, "hidden size of every layer and direction", minimum=1)
    layers: int = option(1, "stacked recurrent layers", minimum=1)
    bidirectional: bool = option(True, "read each text in both directions")
    pooling: str = option(
        "attention",
        "how the states of a text become one vector: last (final states), mean, max, or "
        "attention (a learned weighted mean); padding never takes part",
        POOLINGS,
    )
    attention_size: int = option(128, "attention pooling: size of the scoring layer", minimum=1)
    dropout: float = option(
        0.5, "dropout between layers and on the pooled vector", minimum=0, below=1
    )
    embedding_dropout: float = option(
        0.3, "locked dropout on the embeddings (one mask per text)", minimum=0, below=1
    )
    token_dropout: float = option(
        0.1, "training: chance that a token's whole embedding is zeroed", minimum=0, below=1
    )
    class_weights: str = option(
        "none",
        "none, or balanced: weight each class's loss by n / (classes x count), so rare "
        "classes count as much as frequent ones",
        ("none", "balanced"),
    )

    # --- batching ---
    batch_size: int = option(64, "texts per batch (grouped by length)", minimum=1)
    eval_batch_size: int = option(256, "texts per batch in validation", minimum=1)

    def check(self) -> None:
        super().check()
        if self.valid and not self.train:
            raise ValueError("--valid needs --train")
        if self.text_column == self.label_column:
            raise ValueError(
                f"text_column and label_column are both {self.text_column!r}; they must differ"
            )
