"""classify/data.py: reading CSV, TSV and fastText files, and the errors that name the file and
the line (missing column, empty text, a label only the evaluation data has); scores."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from classify.data import (
    check_known_labels,
    detect_format,
    hold_out,
    read_labelled,
    text_batches,
)
from classify.scores import classification_scores


def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_tsv_csv_and_fasttext_read_the_same_texts(tmp_path):
    tsv = write(tmp_path / "a.tsv", "label\ttext\npos\ta good film\nneg\tbad, very bad\n")
    csv = write(
        tmp_path / "a.csv",
        'id,text,label\n1,a good film,pos\n2,"bad, very bad",neg\n',
    )
    fasttext = write(tmp_path / "a.txt", "__label__pos a good film\n\n__label__neg bad, very bad\n")
    for path in (tsv, csv, fasttext):
        data = read_labelled(path)
        assert data.texts == ["a good film", "bad, very bad"], path
        assert data.labels == ["pos", "neg"], path
    assert read_labelled(fasttext).lines == [1, 3]  # the blank line is counted, not a text


def test_csv_quoted_line_breaks_and_custom_columns_and_gzip(tmp_path):
    path = tmp_path / "b.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write('review,stars\n"two\nlines",5\none line,1\n')
    data = read_labelled(str(path), text_column="review", label_column="stars")
    assert data.texts == ["two\nlines", "one line"] and data.labels == ["5", "1"]
    assert data.lines == [3, 4]


def test_format_by_flag_and_unknown_extension(tmp_path):
    path = write(tmp_path / "data.dat", "label\ttext\nx\ty\n")
    with pytest.raises(ValueError, match=r"data\.dat: cannot tell the format.*--format"):
        read_labelled(path)
    assert read_labelled(path, format="tsv").labels == ["x"]
    assert detect_format("a.TSV.gz") == "tsv" and detect_format("a.ft") == "fasttext"


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("m.tsv", "label\tsentence\npos\tgood\n", r"m\.tsv: line 1: no text column 'text'"),
        ("m.csv", "text,class\ngood,pos\n", r"m\.csv: line 1: no label column 'label'"),
        ("e.tsv", "label\ttext\npos\tgood\nneg\t  \n", r"e\.tsv: line 3: the text is empty"),
        ("e.csv", 'text,label\ngood,pos\n"",neg\n', r"e\.csv: line 3: the text is empty"),
        ("e.txt", "__label__pos good\n__label__neg\n", r"e\.txt: line 2: the text is empty"),
        ("l.tsv", "label\ttext\n\tgood\n", r"l\.tsv: line 2: the label is empty"),
        ("f.tsv", "label\ttext\npos\tgood\nneg\n", r"f\.tsv: line 3: 1 field\(s\)"),
        ("n.txt", "__label__a fine\nno label here\n", r"n\.txt: line 2: no label"),
        ("d.txt", "__label__a __label__b two\n", r"d\.txt: line 1: 2 labels \(a, b\)"),
        ("h.tsv", "label\ttext\n", r"h\.tsv: no labelled texts"),
    ],
)
def test_bad_files_name_the_file_and_the_line(tmp_path, name, content, message):
    with pytest.raises(ValueError, match=message):
        read_labelled(write(tmp_path / name, content))


def test_invalid_utf8_names_the_line(tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_bytes("label\ttext\npos\tbien\nneg\tca\u00f1a\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"bad\.tsv: not valid UTF-8 at line 3"):
        read_labelled(str(path))


def test_a_label_seen_only_in_evaluation_data_is_an_error(tmp_path):
    valid = read_labelled(write(tmp_path / "v.tsv", "label\ttext\npos\tok\nmeh\tso so\n"))
    check_known_labels(valid, ["meh", "neg", "pos"])
    with pytest.raises(ValueError, match=r"v\.tsv: line 3: label 'meh' is not among the training"):
        check_known_labels(valid, ["neg", "pos"])


def test_hold_out_is_random_deterministic_and_complete(tmp_path):
    rows = "".join(f"{'ab'[i // 50]}\ttext {i}\n" for i in range(100))
    data = read_labelled(write(tmp_path / "s.tsv", "label\ttext\n" + rows))
    train, valid = hold_out(data, 0.1, seed=3)
    assert len(valid) == 10 and len(train) == 90
    assert sorted(train.texts + valid.texts) == sorted(data.texts)
    assert set(valid.labels) == {"a", "b"}  # a sorted file's tail would hold one class
    assert hold_out(data, 0.1, seed=3)[1].texts == valid.texts


def test_text_batches_cover_every_text_once_and_depend_on_seed_and_epoch():
    lengths = np.random.default_rng(0).integers(1, 40, size=203)
    batches = text_batches(lengths, 16, seed=1, epoch=1)
    assert sorted(np.concatenate(batches).tolist()) == list(range(203))
    assert max(len(b) for b in batches) == 16
    same = text_batches(lengths, 16, seed=1, epoch=1)
    assert all(np.array_equal(a, b) for a, b in zip(batches, same))
    other = text_batches(lengths, 16, seed=1, epoch=2)
    assert not all(np.array_equal(a, b) for a, b in zip(batches, other))


def test_scores_match_hand_computed_values():
    gold = [0, 0, 1, 1, 2]
    predicted = [0, 1, 1, 1, 0]
    scores = classification_scores(gold, predicted, ["a", "b", "c"])
    assert scores["accuracy"] == pytest.approx(3 / 5)
    # a: P 1/2 R 1/2 F 1/2; b: P 2/3 R 1 F 0.8; c: P 0 R 0 F 0
    assert scores["per_class"]["b"] == pytest.approx(
        {"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2}
    )
    assert scores["macro_f1"] == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    assert scores["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
