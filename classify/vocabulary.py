"""The tokens a classifier reads: characters, words, or sentencepiece subwords, built from the
training texts. Imports no torch."""

from __future__ import annotations

import os

from export.runtime.tokenizers import (
    CharTokenizer,
    SentencePieceTokenizer,
    Tokenizer,
    WordTokenizer,
)
from seq2seq.core.subwords import train_sentencepiece


def build_tokenizer(config, texts: list[str], run_dir: str, log=print) -> Tokenizer:
    """The tokenizer for ``config.level``, built from the training ``texts`` (lowercased when
    ``config.lowercase``). Character and word vocabularies are a pure function of the texts and
    the config; the sentencepiece model is trained once into ``RUN_DIR/spm/text.model`` and
    reused from there, so a resumed run keeps its vocabulary."""
    if config.lowercase:
        texts = [text.lower() for text in texts]
    if config.level == "char":
        tokenizer = CharTokenizer.build("".join(texts), min_count=config.char_min_count)
    elif config.level == "word":
        tokenizer = WordTokenizer.build(
            "\n".join(texts), min_count=config.word_min_count, max_size=config.word_max_size
        )
    elif config.level == "subword":
        prefix = os.path.join(run_dir, "spm", "text")
        if not os.path.exists(prefix + ".model"):
            os.makedirs(os.path.dirname(prefix), exist_ok=True)
            log(f"training a sentencepiece model ({config.subword_vocab_size} pieces)")
            train_sentencepiece(
                texts, prefix, config.subword_vocab_size, model_type=config.spm_model_type
            )
        tokenizer = SentencePieceTokenizer.from_file(prefix + ".model")
    else:
        raise ValueError(f"unknown level {config.level!r} (char, word, subword)")
    log(f"vocabulary: {tokenizer.vocab_size} {config.level} tokens (4 special)")
    return tokenizer
