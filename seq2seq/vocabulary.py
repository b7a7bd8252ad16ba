"""The vocabularies of a translation run: sentencepiece models trained on the training pairs
(one joint model, or one per side), and the target side's subset of a joint model.

Models are trained once into ``RUN_DIR/spm/`` and reused from there, so a resumed run keeps its
ids. Imports no torch.
"""

from __future__ import annotations

import os

from export.runtime.tokenizers import (
    SentencePieceSubsetTokenizer,
    SentencePieceTokenizer,
    Tokenizer,
)
from seq2seq.core.subwords import train_sentencepiece


def prepare_tokenizers(
    config, train_src: list[str], train_tgt: list[str], run_dir: str, log
) -> tuple[Tokenizer, Tokenizer]:
    """The source and target tokenizers of ``config``, trained on the training pairs only
    (never on a held-out validation tail), or read back from the run directory."""
    directory = os.path.join(run_dir, "spm")
    os.makedirs(directory, exist_ok=True)
    common = dict(vocab_size=config.vocab_size, model_type=config.spm_model_type)
    if config.joint_vocab:
        path = os.path.join(directory, "joint.model")
        if not os.path.exists(path):
            log(f"training a joint sentencepiece model ({config.vocab_size} pieces)")
            _train(path, [train_src, train_tgt], common)
        tokenizer = SentencePieceTokenizer.from_file(path)
        if config.target_pieces == "all":
            return tokenizer, tokenizer
        return tokenizer, target_subset(tokenizer, train_tgt, directory, log)
    tokenizers = []
    for side, lines in (("source", train_src), ("target", train_tgt)):
        path = os.path.join(directory, f"{side}.model")
        if not os.path.exists(path):
            log(f"training the {side} sentencepiece model ({config.vocab_size} pieces)")
            _train(path, [lines], common)
        tokenizers.append(SentencePieceTokenizer.from_file(path))
    return tokenizers[0], tokenizers[1]


def _train(model_path: str, sides: list[list[str]], settings: dict) -> None:
    lines = (line for side in sides for line in side)
    train_sentencepiece(lines, model_path[: -len(".model")], **settings)


def target_subset(
    tokenizer: SentencePieceTokenizer, train_tgt: list[str], directory: str, log
) -> SentencePieceSubsetTokenizer:
    """The joint model restricted to the pieces of the training targets (computed once per
    run and kept in ``spm/target.pieces.json``, so a resumed run uses the same ids)."""
    path = os.path.join(directory, "target.pieces.json")
    if os.path.exists(path):
        return SentencePieceSubsetTokenizer.load_files(os.path.join(directory, "joint.model"), path)
    subset = SentencePieceSubsetTokenizer.from_text(tokenizer, train_tgt)
    log(
        f"target side: {subset.vocab_size} of the {tokenizer.vocab_size} joint pieces "
        "(those seen in the training targets, and every single character)"
    )
    subset.save_pieces(path)
    return subset
