"""The vocabulary of a language model, per level: characters, words, or sentencepiece subwords.

All three keep line breaks as tokens (a character, a word of its own, the ``<nl>`` piece), so a
model learns where lines end and an empty prompt can start "at the beginning of a line".
Imports no torch.
"""

from __future__ import annotations

import os

from export.runtime.tokenizers import (
    CharTokenizer,
    SentencePieceTokenizer,
    Tokenizer,
    WordTokenizer,
)
from seq2seq.core.subwords import train_sentencepiece


def build_tokenizer(config, train_text: str, run_dir: str, log=print) -> Tokenizer:
    """The tokenizer for ``config.level``, built from ``train_text``.

    Character and word vocabularies are a pure function of the text and the config. The
    sentencepiece model is trained once into ``RUN_DIR/spm/text.model`` and reused from there
    (so a resumed run keeps its vocabulary)."""
    if config.level == "char":
        tokenizer = CharTokenizer.build(train_text, min_count=config.char_min_count)
    elif config.level == "word":
        tokenizer = WordTokenizer.build(
            train_text, min_count=config.word_min_count, max_size=config.word_max_size
        )
    elif config.level == "subword":
        tokenizer = _sentencepiece(config, train_text, run_dir, log)
    else:
        raise ValueError(f"unknown level {config.level!r} (char, word, subword)")
    log(f"vocabulary: {tokenizer.vocab_size} {config.level} tokens (4 special)")
    return tokenizer


def _sentencepiece(config, train_text: str, run_dir: str, log) -> SentencePieceTokenizer:
    directory = os.path.join(run_dir, "spm")
    prefix = os.path.join(directory, "text")
    if not os.path.exists(prefix + ".model"):
        os.makedirs(directory, exist_ok=True)
        log(f"training a sentencepiece model ({config.subword_vocab_size} pieces)")
        lines = train_text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        train_sentencepiece(
            lines,
            prefix,
            config.subword_vocab_size,
            model_type=config.spm_model_type,
            line_breaks=True,
        )
    return SentencePieceTokenizer.from_file(prefix + ".model")


def newline_id(tokenizer: Tokenizer) -> int | None:
    """The id of a line break, or None when the vocabulary has none (a text of one line)."""
    if isinstance(tokenizer, SentencePieceTokenizer):
        return tokenizer.newline_id
    ids = tokenizer.encode("\n")
    return ids[0] if len(ids) == 1 and ids[0] != tokenizer.unk_id else None
