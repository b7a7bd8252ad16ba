"""generate/data.py, generate/vocabulary.py, generate/scores.py and the scoring layout
(export.runtime.split_into_streams): reading texts, validation tails, vocabularies per level,
TBPTT windows, and the scores."""

from __future__ import annotations

import gzip
import math

import numpy as np
import pytest
from lm_helpers import TEXT, lm_config, make_tokenizer

from export.runtime.generator import split_into_streams
from export.runtime.tokenizers import UNK_ID
from generate.data import (
    check_stream_length,
    encode_text,
    load_texts,
    split_tail,
    training_windows,
)
from generate.scores import text_scores
from generate.vocabulary import newline_id
from seq2seq.core.text_files import read_text

# ----------------------------------------------------------------------------- reading


def test_read_text_joins_lines_with_a_final_line_break(tmp_path):
    plain = tmp_path / "a.txt"
    plain.write_bytes(b"\xef\xbb\xbfone\r\ntwo\nthree")
    assert read_text(str(plain)) == "one\ntwo\nthree\n"
    packed = tmp_path / "a.txt.gz"
    packed.write_bytes(gzip.compress(b"one\ntwo\n"))
    assert read_text(str(packed)) == "one\ntwo\n"


def test_read_text_errors_name_the_file(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(ValueError, match=f"{empty}: the file is empty"):
        read_text(str(empty))
    latin = tmp_path / "latin.txt"
    latin.write_bytes("ok\nca\u00f1a\n".encode("latin-1"))
    with pytest.raises(ValueError, match=f"{latin}: not valid UTF-8 at line 2"):
        read_text(str(latin))
    with pytest.raises(ValueError, match="missing.txt: cannot read"):
        read_text(str(tmp_path / "missing.txt"))


def test_split_tail_cuts_at_a_line_break():
    head, tail = split_tail(TEXT, 0.1, "t")
    assert head + tail == TEXT
    assert head.endswith("\n") and tail.endswith("\n")
    assert len(tail) == pytest.approx(0.1 * len(TEXT), abs=60)
    assert tail.splitlines()[0] in TEXT.splitlines()  # a whole line, not part of one
    with pytest.raises(ValueError, match="one line only"):
        split_tail("just one line\n", 0.5, "one.txt")
    with pytest.raises(ValueError, match="valid_fraction must be between 0 and 1"):
        split_tail(TEXT, 1.5, "t")


def test_load_texts_from_one_text_or_two_files(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text(TEXT, encoding="utf-8")
    train, valid, description = load_texts(lm_config(text=str(text), valid_fraction=0.2))
    assert train + valid == TEXT and "for validation" in description
    train_file, valid_file = tmp_path / "train.txt", tmp_path / "valid.txt"
    train_file.write_text("a b\n", encoding="utf-8")
    valid_file.write_text("c d\n", encoding="utf-8")
    config = lm_config(train=str(train_file), valid=str(valid_file))
    assert load_texts(config)[:2] == ("a b\n", "c d\n")
    with pytest.raises(ValueError, match="either --text or --train and --valid"):
        load_texts(lm_config(text=str(text), train=str(train_file)))
    with pytest.raises(ValueError, match="missing --valid"):
        load_texts(lm_config(train=str(train_file)))


# ----------------------------------------------------------------------------- vocabularies


def test_vocabularies_per_level_keep_line_breaks(tmp_path):
    for level in ("char", "word", "subword"):
        tokenizer = make_tokenizer(level, tmp_path)
        ids = tokenizer.encode(TEXT)
        assert UNK_ID not in ids, level
        assert tokenizer.decode(ids) == TEXT, level
        line_break = newline_id(tokenizer)
        assert line_break is not None and ids.count(line_break) == TEXT.count("\n"), level
    assert (tmp_path / "spm" / "text.model").exists()


def test_word_vocabulary_frequency_cut_off():
    from generate.vocabulary import build_tokenizer

    text = "a a a b b c\n"
    tokenizer = build_tokenizer(
        lm_config(level="word", word_min_count=2), text, "", log=lambda *_: None
    )
    assert tokenizer.encode("a b c") == [tokenizer.index["a"], tokenizer.index["b"], UNK_ID]
    small = build_tokenizer(
        lm_config(level="word", word_min_count=1, word_max_size=5), text, "", log=lambda *_: None
    )
    assert small.vocab_size == 5  # 4 specials + the most frequent word
    char = build_tokenizer(lm_config(level="char", char_min_count=3), text, "", log=lambda *_: None)
    assert char.encode("c") == [UNK_ID]
    assert newline_id(char) is None  # a single line break is under the cut-off


# ----------------------------------------------------------------------------- windows


def test_training_windows_are_contiguous_rows():
    ids = np.arange(1000, dtype=np.int64)
    windows = [w[:2] for w in training_windows(ids, batch_size=4, bptt=32, seed=1, epoch=1)]
    assert all(x.shape == y.shape and x.shape[0] == 4 and x.shape[1] <= 32 for x, y in windows)
    assert all(x.shape[1] == 32 for x, _ in windows[:-1])
    inputs = np.concatenate([x for x, _ in windows], axis=1)
    targets = np.concatenate([y for _, y in windows], axis=1)
    assert np.array_equal(targets, inputs + 1)  # targets are the next token
    for row in inputs:  # each row is a contiguous stretch of the text ...
        assert np.array_equal(row, np.arange(row[0], row[0] + len(row)))
    # ... and the rows follow each other: the whole epoch reads one stretch once
    assert np.array_equal(inputs.reshape(-1), np.arange(inputs[0, 0], inputs[0, 0] + inputs.size))
    assert inputs[0, 0] < 32 and inputs.size > 1000 - 32 - 4


def test_training_windows_are_a_function_of_seed_and_epoch():
    ids = np.arange(5000, dtype=np.int64)

    def layout(seed, epoch):
        windows = training_windows(ids, 8, 20, seed, epoch, state_reset=0.3)
        return [(x.tolist(), y.tolist(), r.tolist()) for x, y, r in windows]

    assert layout(1, 3) == layout(1, 3)
    offsets = {training_windows(ids, 8, 20, 1, epoch)[0][0][0, 0] for epoch in range(1, 9)}
    assert len(offsets) > 1  # window boundaries move from epoch to epoch


def test_training_windows_mark_rows_whose_state_restarts():
    ids = np.arange(20000, dtype=np.int64)
    resets = np.stack([r for _, _, r in training_windows(ids, 16, 10, 1, 1, state_reset=0.25)])
    assert resets.dtype == bool and resets.shape == (len(resets), 16)
    assert resets.mean() == pytest.approx(0.25, abs=0.03)
    assert not any(r.any() for _, _, r in training_windows(ids, 16, 10, 1, 1))


def test_a_text_too_short_for_the_batch_is_refused():
    with pytest.raises(ValueError, match="too few for batch_size 32 rows and bptt 128"):
        check_stream_length(np.arange(150), 32, 128, "the training text")
    check_stream_length(np.arange(200), 32, 128, "the training text")


# ----------------------------------------------------------------------------- scoring layout


@pytest.mark.parametrize("streams", [1, 3, 7, 16, 1000])
def test_split_into_streams_predicts_every_token_once(streams):
    ids = list(range(10, 60))
    inputs, targets, mask = split_into_streams(ids, 4, streams)
    assert inputs.shape == targets.shape == mask.shape
    assert len(inputs) <= streams
    assert targets[mask].tolist() == ids  # row by row, in order
    assert inputs[mask].tolist() == [4, *ids[:-1]]  # each target's predecessor
    flat = mask.reshape(-1).tolist()  # only the end of the last row is padding
    assert flat == sorted(flat, reverse=True) and flat.count(False) < inputs.shape[1]


def test_split_into_streams_without_a_start_token():
    inputs, targets, mask = split_into_streams([5, 6, 7], None, 2)
    assert targets[mask].tolist() == [6, 7] and inputs[mask].tolist() == [5, 6]
    with pytest.raises(ValueError, match="no token to predict"):
        split_into_streams([5], None, 2)


def test_encode_text_is_int64():
    tokenizer = make_tokenizer("char")
    ids = encode_text(tokenizer, "the king\n")
    assert ids.dtype == np.int64 and len(ids) == 9


# ----------------------------------------------------------------------------- scores


def test_scores_normalise_by_characters_and_words():
    text = "to be or\nnot to be\n"  # 19 characters, 6 words
    scores = text_scores(nll_sum=19 * math.log(2), tokens=19, text=text)
    assert scores["bits_per_char"] == pytest.approx(1.0)
    assert scores["perplexity_per_word"] == pytest.approx(math.exp(19 * math.log(2) / 6))
    assert scores["nll"] == pytest.approx(math.log(2)) and scores["ppl"] == pytest.approx(2.0)
    assert (scores["characters"], scores["words"], scores["tokens"]) == (19, 6, 19)
