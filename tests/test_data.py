"""seq2seq/data.py: reading parallel text with errors a user can act on, filtering with counts,
and token-budget batches that are deterministic in (seed, epoch)."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from seq2seq.core.batching import pad_batch, token_batches
from seq2seq.core.text_files import read_lines
from seq2seq.data import filter_pairs, read_parallel


def write(path, data: bytes):
    path.write_bytes(data)
    return str(path)


def test_read_lines_strips_line_endings_and_a_bom(tmp_path):
    path = write(tmp_path / "a.txt", "\ufeffuno\r\ndos\n\ntres".encode())
    assert read_lines(path) == ["uno", "dos", "", "tres"]
    gz = tmp_path / "a.txt.gz"
    with gzip.open(gz, "wb") as f:
        f.write(b"uno\ndos\n")
    assert read_lines(str(gz)) == ["uno", "dos"]


def test_mismatched_line_counts_name_both_files_and_counts(tmp_path):
    src = write(tmp_path / "train.es", b"uno\ndos\ntres\n")
    tgt = write(tmp_path / "train.en", b"one\ntwo\n")
    with pytest.raises(ValueError) as error:
        read_parallel(src, tgt)
    message = str(error.value)
    assert f"{src} has 3 lines" in message and f"{tgt} has 2" in message
    assert read_parallel(src, write(tmp_path / "ok.en", b"one\ntwo\nthree\n"))[1][2] == "three"


@pytest.mark.parametrize("content", [b"", b"\n\n  \n"], ids=["empty", "blank"])
def test_empty_files_are_refused(tmp_path, content):
    path = write(tmp_path / "empty.txt", content)
    with pytest.raises(ValueError, match=f"{path}: the file is empty"):
        read_lines(path)
    with pytest.raises(ValueError, match="empty"):
        read_parallel(write(tmp_path / "full.txt", b"a\n"), path)


def test_non_utf8_bytes_name_the_file_and_line(tmp_path):
    path = write(tmp_path / "latin1.txt", "uno\ndos\nca\u00f1a\n".encode("latin-1"))
    with pytest.raises(ValueError) as error:
        read_lines(path)
    message = str(error.value)
    assert path in message and "line 3" in message and "UTF-8" in message


def test_missing_file(tmp_path):
    path = str(tmp_path / "nowhere.txt")
    with pytest.raises(ValueError, match=f"{path}: cannot read"):
        read_lines(path)


def test_filter_pairs_counts_each_reason():
    src = [[5, 6], [], [5] * 11, [5, 6, 7], [5], [5, 6], [5] * 4]
    tgt = [[7, 8], [7], [7], [7] * 12, [7] * 5, [], [7] * 3]
    keep, report = filter_pairs(src, tgt, max_length=10, max_length_ratio=3.0)
    assert keep == [0, 6]
    assert report.kept == 2
    assert report.dropped == {"empty": 2, "longer than 10 tokens": 2, "length ratio over 3.0": 1}
    assert str(report) == (
        "kept 2 pairs, dropped 5 (2 empty, 1 length ratio over 3.0, 2 longer than 10 tokens)"
    )
    keep, report = filter_pairs(src[:1], tgt[:1], max_length=10)
    assert keep == [0] and str(report) == "kept all 1 pairs"


@pytest.fixture
def lengths():
    return np.random.default_rng(0).integers(1, 40, size=500)


@pytest.mark.parametrize("budget", [64, 300, 2048])
def test_token_batches_respect_the_budget_and_cover_every_example_once(lengths, budget):
    batches = token_batches(lengths, budget, seed=1, epoch=1, pool_batches=4)
    covered = np.concatenate(batches)
    assert sorted(covered.tolist()) == list(range(len(lengths)))
    for batch in batches:
        padded = int(lengths[batch].max()) * len(batch)
        assert padded <= budget or len(batch) == 1  # one over-long example goes alone
    # batches are full: adding the next example of the same pool would break the budget
    assert np.mean([len(b) for b in batches]) > 0.5 * budget / lengths.mean()


def test_an_example_longer_than_the_budget_goes_alone():
    batches = token_batches(np.array([3, 50, 4, 2]), 12, seed=0, epoch=1)
    assert sorted(map(len, batches)) == [1, 3]
    assert [b.tolist() for b in batches if len(b) == 1] == [[1]]


def test_token_batches_are_deterministic_in_seed_and_epoch(lengths):
    def batches(seed, epoch):
        return [b.tolist() for b in token_batches(lengths, 300, seed, epoch)]

    assert batches(1, 1) == batches(1, 1)
    assert batches(1, 1) != batches(1, 2)
    assert batches(1, 1) != batches(2, 1)


def test_token_batches_group_similar_lengths(lengths):
    batches = token_batches(lengths, 300, seed=1, epoch=1, pool_batches=1000)
    padding = sum(int(lengths[b].max()) * len(b) - int(lengths[b].sum()) for b in batches)
    assert padding < 0.05 * lengths.sum()


def test_token_batches_without_shuffle_keep_order_within_length():
    batches = token_batches(np.array([2, 2, 2, 2]), 4, seed=0, epoch=1, shuffle=False)
    assert [b.tolist() for b in batches] == [[0, 1], [2, 3]]


def test_pad_batch():
    array, lengths = pad_batch([[5, 6, 7], [8]], pad_id=0, prefix=2, suffix=3)
    assert array.dtype == np.int64
    assert array.tolist() == [[2, 5, 6, 7, 3], [2, 8, 3, 0, 0]]
    assert lengths.tolist() == [5, 3]
    array, lengths = pad_batch([[5], [6, 7]], pad_id=0, suffix=3)
    assert array.tolist() == [[5, 3, 0], [6, 7, 3]] and lengths.tolist() == [2, 3]
