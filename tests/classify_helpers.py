"""A tiny labelled set and a tiny classifier config for the classification tests."""

from __future__ import annotations

import random

WORDS = {
    "animals": "cat dog horse bird fish cow sheep goat".split(),
    "food": "bread cheese apple soup rice bean milk cake".split(),
    "weather": "rain snow wind sun cloud storm fog heat".split(),
}
FILLER = "the a and with very some".split()


def labelled_rows(count: int = 36, seed: int = 0) -> list[tuple[str, str]]:
    """(label, text) pairs: 2 to 9 words, mostly of the label's topic."""
    rng = random.Random(seed)
    labels = sorted(WORDS)
    rows = []
    for i in range(count):
        label = labels[i % len(labels)]
        words = [
            rng.choice(WORDS[label]) if rng.random() < 0.7 else rng.choice(FILLER)
            for _ in range(rng.randint(2, 9))
        ]
        words[0] = rng.choice(WORDS[label])
        rows.append((label, " ".join(words)))
    return rows


def write_tsv(path, rows) -> str:
    path.write_text(
        "label\ttext\n" + "".join(f"{label}\t{text}\n" for label, text in rows), encoding="utf-8"
    )
    return str(path)


TINY_FLAGS = [
    "--amp",
    "off",
    "--level",
    "word",
    "--word-min-count",
    "1",
    "--embedding-size",
    "16",
    "--hidden-size",
    "16",
    "--attention-size",
    "8",
    "--batch-size",
    "8",
    "--eval-every",
    "5",
    "--log-every",
    "1",
    "--progress",
    "false",
    "--threads",
    "1",
]
