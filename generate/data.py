"""Texts for language models: reading, splitting off a validation tail, encoding to one long id
stream, and cutting the stream into windows for truncated backpropagation through time.

Training reads the text as ``batch_size`` contiguous rows side by side, ``bptt`` tokens at a
time, so the hidden state at the end of one window is the right start for the next. A few rows
start afresh at each window (``state_reset``), so the model keeps meeting the zero state it
starts from when it reads a prompt. The windows of an epoch are a pure function of (seed,
epoch): a resumed run rebuilds exactly the windows it had. Data-parallel training splits the
rows between the processes, each reading ``batch_size`` of them. numpy only (the torch-free
evaluation reads texts with it too).
"""

from __future__ import annotations

import numpy as np

from export.runtime.tokenizers import Tokenizer
from seq2seq.core.text_files import read_text


def split_tail(text: str, fraction: float, origin: str) -> tuple[str, str]:
    """Split ``text`` into a head and its last ``fraction``, at a line boundary, so the
    validation text is never interleaved with the training text."""
    if not 0 < fraction < 1:
        raise ValueError(f"valid_fraction must be between 0 and 1, got {fraction}")
    cut = text.find("\n", int(len(text) * (1 - fraction))) + 1
    if cut <= 0 or cut >= len(text):
        cut = text.rfind("\n", 0, len(text) - 1) + 1
    if cut <= 0:
        raise ValueError(
            f"{origin}: one line only; a validation tail is split off at a line "
            "break, so give a text of several lines (or --train and --valid)"
        )
    return text[:cut], text[cut:]


def load_texts(config) -> tuple[str, str, str]:
    """The training and validation texts of a config (``train`` + ``valid``, or ``text``
    split), and a line describing where they came from."""
    if config.text:
        if config.train or config.valid:
            raise ValueError("give either --text or --train and --valid, not both")
        train, valid = split_tail(read_text(config.text), config.valid_fraction, config.text)
        return (
            train,
            valid,
            (
                f"{config.text}: {len(train):,} characters for training, the "
                f"last {len(valid):,} for validation"
            ),
        )
    missing = [
        flag for flag, value in (("--train", config.train), ("--valid", config.valid)) if not value
    ]
    if missing:
        raise ValueError(
            f"missing {' and '.join(missing)} (or --text FILE, which splits off a validation tail)"
        )
    train, valid = read_text(config.train), read_text(config.valid)
    return (
        train,
        valid,
        (
            f"{config.train}: {len(train):,} characters; {config.valid}: "
            f"{len(valid):,} for validation"
        ),
    )


def encode_text(tokenizer: Tokenizer, text: str) -> np.ndarray:
    """The token ids of ``text``: int64 [tokens]."""
    return np.asarray(tokenizer.encode(text), dtype=np.int64)


def check_stream_length(
    ids: np.ndarray, batch_size: int, bptt: int, origin: str, processes: int = 1
) -> None:
    """Refuse a text too short for ``batch_size`` rows on each of ``processes`` (after the
    largest epoch offset)."""
    rows = batch_size * processes
    if len(ids) - bptt < 2 * rows:
        each = f" on each of {processes} processes" if processes > 1 else ""
        raise ValueError(
            f"{origin} has {len(ids)} tokens: too few for batch_size {batch_size} rows{each} "
            f"and bptt {bptt}; lower batch_size or bptt, or give a longer text"
        )


def training_windows(
    ids: np.ndarray,
    batch_size: int,
    bptt: int,
    seed: int,
    epoch: int,
    state_reset: float = 0.0,
    rank: int = 0,
    processes: int = 1,
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The windows of one epoch: ``(inputs, targets, reset)`` with ``inputs`` and ``targets``
    int64 [batch_size, time] (time = ``bptt``, the last window maybe shorter; targets one token
    ahead of inputs) and ``reset`` bool [batch_size]: the rows whose carried state is to be
    zeroed before the window (each with probability ``state_reset``).

    ``ids`` [tokens] is cut into ``batch_size`` x ``processes`` contiguous rows, starting at a
    random offset below ``bptt`` so that window boundaries move from epoch to epoch; process
    ``rank`` of ``processes`` (data-parallel training) reads rows ``rank * batch_size`` to
    ``(rank + 1) * batch_size``, so N processes with ``batch_size`` B read exactly the rows of
    one process with N x B. Row ``r`` of window ``k + 1`` continues row ``r`` of window ``k``.
    A pure function of its arguments."""
    if not 0 <= rank < processes:
        raise ValueError(f"rank {rank} is not one of {processes} processes")
    rows = batch_size * processes
    rng = np.random.default_rng([seed, epoch])
    offset = int(rng.integers(0, bptt))
    per_row = (len(ids) - 1 - offset) // rows
    used = rows * per_row
    inputs = ids[offset : offset + used].reshape(rows, per_row)
    targets = ids[offset + 1 : offset + 1 + used].reshape(rows, per_row)
    starts = range(0, per_row, bptt)
    resets = rng.random((len(starts), rows)) < state_reset
    mine = slice(rank * batch_size, (rank + 1) * batch_size)
    inputs, targets, resets = inputs[mine], targets[mine], resets[:, mine]
    return [
        (inputs[:, start : start + bptt], targets[:, start : start + bptt], reset)
        for start, reset in zip(starts, resets)
    ]
