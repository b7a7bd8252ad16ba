"""Labelled texts: reading CSV, TSV and fastText files, the label set, held-out validation,
and batches. numpy only (the torch-free ``classify.evaluate`` reads data with it too).

Formats, chosen by ``--format`` or the file's extension (``.gz`` is read transparently):

- CSV (``.csv``) and TSV (``.tsv``, ``.tab``) with a header line naming the columns; the text
  and label columns are ``text`` and ``label`` unless told otherwise. CSV follows RFC 4180
  (quoted fields may hold commas and line breaks); TSV fields are split on tabs, no quoting.
- fastText lines (``.txt``, ``.ft``, ``.fasttext``): ``__label__X the text``.

Nothing is dropped silently: a missing column, a row with too few fields, an empty text or
label, or several labels on one line stop with an error naming the file and the line.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass

import numpy as np

from seq2seq.core.text_files import read_lines

FASTTEXT_PREFIX = "__label__"
EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".txt": "fasttext",
    ".ft": "fasttext",
    ".fasttext": "fasttext",
}


@dataclass
class LabelledTexts:
    """Texts with their labels and where each came from (``lines``: 1-based line numbers)."""

    path: str
    texts: list[str]
    labels: list[str]
    lines: list[int]

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices) -> LabelledTexts:
        return LabelledTexts(
            self.path,
            [self.texts[i] for i in indices],
            [self.labels[i] for i in indices],
            [self.lines[i] for i in indices],
        )


def detect_format(path: str, format: str = "auto") -> str:
    """``format`` itself, or the format the extension of ``path`` names."""
    if format != "auto":
        return format
    name = path[:-3] if path.endswith(".gz") else path
    extension = os.path.splitext(name)[1].lower()
    if extension not in EXTENSIONS:
        raise ValueError(
            f"{path}: cannot tell the format from the extension {extension or '(none)'!r}; "
            "pass --format csv, tsv or fasttext"
        )
    return EXTENSIONS[extension]


def read_labelled(
    path: str, format: str = "auto", text_column: str = "text", label_column: str = "label"
) -> LabelledTexts:
    """Read a labelled file (see the module docstring). Raises ValueError naming the file and
    the line of the first problem."""
    kind = detect_format(path, format)
    lines = read_lines(path)
    if kind == "fasttext":
        data = _read_fasttext(path, lines)
    else:
        data = _read_table(path, lines, kind, text_column, label_column)
    if not data.texts:
        raise ValueError(f"{path}: no labelled texts (only a header?)")
    return data


def _check_row(path: str, line: int, text: str, label: str) -> None:
    if not label.strip():
        raise ValueError(f"{path}: line {line}: the label is empty")
    if not text.strip():
        raise ValueError(f"{path}: line {line}: the text is empty")


def _read_table(path, lines, kind, text_column, label_column) -> LabelledTexts:
    if kind == "csv":
        reader = csv.reader(io.StringIO("\n".join(lines) + "\n"))
        rows = ((reader.line_num, row) for row in reader)
    else:
        rows = ((number, line.split("\t")) for number, line in enumerate(lines, start=1))
    try:
        _, header = next(rows)
    except StopIteration:
        raise ValueError(f"{path}: the file is empty") from None
    except csv.Error as error:
        raise ValueError(f"{path}: line 1: not valid CSV ({error})") from None
    header = [name.strip() for name in header]
    for role, column in (("text", text_column), ("label", label_column)):
        if column not in header:
            raise ValueError(
                f"{path}: line 1: no {role} column {column!r} in the header "
                f"(columns: {', '.join(repr(h) for h in header)}); pass --{role}-column NAME"
            )
    text_at, label_at = header.index(text_column), header.index(label_column)
    needed = max(text_at, label_at) + 1
    texts, labels, numbers = [], [], []
    try:
        for number, row in rows:
            if not row or row == [""]:
                continue  # a blank line between records holds no text to drop
            if len(row) < needed:
                raise ValueError(
                    f"{path}: line {number}: {len(row)} field(s), but the header has "
                    f"{len(header)} (the {text_column!r} and {label_column!r} columns need "
                    f"{needed})"
                )
            text, label = row[text_at], row[label_at].strip()
            _check_row(path, number, text, label)
            texts.append(text)
            labels.append(label)
            numbers.append(number)
    except csv.Error as error:
        raise ValueError(f"{path}: line {reader.line_num}: not valid CSV ({error})") from None
    return LabelledTexts(path, texts, labels, numbers)


def _read_fasttext(path: str, lines: list[str]) -> LabelledTexts:
    texts, labels, numbers = [], [], []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        words = line.split()
        found = []
        while words and words[0].startswith(FASTTEXT_PREFIX):
            found.append(words.pop(0)[len(FASTTEXT_PREFIX) :])
        if not found:
            raise ValueError(
                f"{path}: line {number}: no label; a fastText line starts with "
                f"{FASTTEXT_PREFIX}LABEL"
            )
        if len(found) > 1:
            raise ValueError(
                f"{path}: line {number}: {len(found)} labels ({', '.join(found)}); this "
                "classifier takes one label per text"
            )
        text = " ".join(words)
        _check_row(path, number, text, found[0])
        texts.append(text)
        labels.append(found[0])
        numbers.append(number)
    return LabelledTexts(path, texts, labels, numbers)


def check_known_labels(data: LabelledTexts, known: list[str], role: str = "training") -> None:
    """Refuse a label the model was not trained on, naming the file and its first line."""
    allowed = set(known)
    for label, line in zip(data.labels, data.lines):
        if label not in allowed:
            raise ValueError(
                f"{data.path}: line {line}: label {label!r} is not among the {role} labels "
                f"({', '.join(known)})"
            )


def hold_out(data: LabelledTexts, fraction: float, seed: int) -> tuple[LabelledTexts, ...]:
    """Split off ``fraction`` of ``data`` for validation, picked at random with ``seed``
    (not the file's tail: labelled files are often sorted by label, and a tail would hold one
    class). Returns (train, valid)."""
    count = min(len(data) - 1, max(1, round(len(data) * fraction)))
    if count < 1:
        raise ValueError(f"{data.path}: {len(data)} text(s) are too few to hold any out")
    order = np.random.default_rng([seed, 7]).permutation(len(data))
    valid = np.sort(order[:count])
    train = np.sort(order[count:])
    return data.subset(train.tolist()), data.subset(valid.tolist())


def text_batches(
    lengths: np.ndarray, batch_size: int, seed: int, epoch: int, pool_batches: int = 50
) -> list[np.ndarray]:
    """Example indices in batches of ``batch_size`` texts of similar length. ``lengths``:
    [texts]. Texts are shuffled, cut into pools of ``pool_batches`` batches, sorted by length
    within a pool, batched, and the batches shuffled: deterministic in (seed, epoch)."""
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    pool = batch_size * pool_batches
    batches = []
    for start in range(0, len(order), pool):
        members = order[start : start + pool]
        members = members[np.argsort(lengths[members], kind="stable")]
        batches += [members[i : i + batch_size] for i in range(0, len(members), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def label_counts(labels: list[str], names: list[str]) -> np.ndarray:
    """How many texts carry each of ``names``: [classes] int64."""
    index = {name: i for i, name in enumerate(names)}
    return np.bincount([index[label] for label in labels], minlength=len(names))
