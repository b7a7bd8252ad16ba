"""Training sentencepiece models with the toolkit's special ids (the runtime only loads them).

Every model reserves ``PAD_ID, UNK_ID, BOS_ID, EOS_ID`` = 0, 1, 2, 3 like the char and word
vocabularies, so models, search and bundles never need to ask.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from export.runtime.tokenizers import BOS_ID, EOS_ID, PAD_ID, UNK_ID, SentencePieceTokenizer


def train_sentencepiece(
    lines: Iterable[str],
    model_prefix: str,
    vocab_size: int,
    model_type: str = "unigram",
    character_coverage: float = 1.0,
    line_breaks: bool = False,
    max_sentences: int = 2_000_000,
    seed_sentencepiece_size: int = 1_000_000,
) -> SentencePieceTokenizer:
    """Train a model on ``lines`` (sentences, or the lines of a text; any iterable of str);
    writes ``model_prefix.model``. ``line_breaks`` adds the line-break piece (language models
    keep line breaks as tokens). ``hard_vocab_limit`` is off, so a text too small for
    ``vocab_size`` gets the largest vocabulary sentencepiece can make rather than an error."""
    import sentencepiece as spm

    options = dict(
        sentence_iterator=iter(lines),
        model_prefix=model_prefix,
        vocab_size=vocab_size,
        model_type=model_type,
        character_coverage=character_coverage,
        pad_id=PAD_ID,
        unk_id=UNK_ID,
        bos_id=BOS_ID,
        eos_id=EOS_ID,
        input_sentence_size=max_sentences,
        shuffle_input_sentence=True,
        seed_sentencepiece_size=seed_sentencepiece_size,
        num_threads=os.cpu_count() or 1,
        minloglevel=2,
        hard_vocab_limit=False,
    )
    if line_breaks:
        options["user_defined_symbols"] = [SentencePieceTokenizer.NEWLINE_PIECE]
    spm.SentencePieceTrainer.train(**options)
    return SentencePieceTokenizer.from_file(model_prefix + ".model")
