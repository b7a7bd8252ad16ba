"""Reading text files for training: UTF-8 (``.gz`` transparently), with errors that name the
file and the line, and the small demo corpora shipped inside the packages. No torch."""

from __future__ import annotations

import gzip
import os


def read_lines(path: str) -> list[str]:
    """The lines of a UTF-8 text file (``.gz`` is read transparently), without line endings.

    Raises ValueError naming the file when it is missing, empty, or not valid UTF-8 (with the
    line number of the first bad byte)."""
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except OSError as error:
        raise ValueError(f"{path}: cannot read ({error.strerror or error})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise ValueError(
            f"{path}: not valid UTF-8 at line {line} (byte {error.start}: "
            f"{raw[error.start : error.start + 1]!r}); convert the file to UTF-8"
        ) from None
    if not text.strip():
        raise ValueError(f"{path}: the file is empty")
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line.rstrip("\r") for line in lines]


def read_text(path: str) -> str:
    """A UTF-8 text file (``.gz`` read transparently) as one string: lines joined by ``\\n``,
    with a final line break; ``\\r\\n`` line ends and a byte-order mark are dropped. Raises
    ValueError naming the file when it is missing, empty or not UTF-8."""
    return "\n".join(read_lines(path)) + "\n"


def default_corpus_path(package: str, name: str) -> str:
    """Path of a small corpus shipped inside a package (``demo_data/``)."""
    import importlib.util

    spec = importlib.util.find_spec(package)
    return os.path.join(os.path.dirname(spec.origin), "demo_data", name)
