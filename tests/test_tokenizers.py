"""export/tokenizers.py: character, word and sentencepiece tokenizers share fixed special ids,
round-trip text, mark unknown symbols, and survive save/load and state/from_state."""

from __future__ import annotations

import pytest

from export.runtime.tokenizers import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    SPECIAL_TOKENS,
    UNK_ID,
    UNKNOWN_TEXT,
    CharTokenizer,
    SentencePieceSubsetTokenizer,
    SentencePieceTokenizer,
    WordTokenizer,
    load_tokenizer,
    tokenizer_from_state,
)
from seq2seq.core.subwords import train_sentencepiece

TEXT = """the quick brown fox jumps over the lazy dog
el veloz zorro marrón salta sobre el perro perezoso
der schnelle braune Fuchs springt über den faulen Hund
a stitch in time saves nine, and the early bird catches the worm.
"""


@pytest.fixture(scope="module")
def sentencepiece_files(tmp_path_factory):
    """Two small sentencepiece models: plain, and with the <nl> line-break piece."""
    directory = tmp_path_factory.mktemp("spm")
    corpus = (TEXT * 20).splitlines()
    plain = train_sentencepiece(corpus, str(directory / "plain"), vocab_size=60)
    lines = train_sentencepiece(corpus, str(directory / "lines"), vocab_size=60, line_breaks=True)
    return plain, lines


def test_special_ids_are_fixed():
    assert (PAD_ID, UNK_ID, BOS_ID, EOS_ID) == (0, 1, 2, 3)
    assert SPECIAL_TOKENS == ("<pad>", "<unk>", "<bos>", "<eos>")
    for tokenizer in (CharTokenizer.build(TEXT), WordTokenizer.build(TEXT, min_count=1)):
        assert tokenizer.tokens[:4] == list(SPECIAL_TOKENS)
        assert [tokenizer.pad_id, tokenizer.unk_id, tokenizer.bos_id, tokenizer.eos_id] == [
            0,
            1,
            2,
            3,
        ]
        assert min(tokenizer.encode(TEXT)) >= 4  # real tokens start after the specials


def test_sentencepiece_special_ids_are_fixed(sentencepiece_files):
    for tokenizer in sentencepiece_files:
        processor = tokenizer.processor
        assert (processor.pad_id(), processor.unk_id(), processor.bos_id(), processor.eos_id()) == (
            PAD_ID,
            UNK_ID,
            BOS_ID,
            EOS_ID,
        )


def test_sentencepiece_refuses_a_model_with_other_special_ids(tmp_path):
    import sentencepiece as spm

    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TEXT * 20, encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(tmp_path / "default"),
        vocab_size=50,
        minloglevel=2,
        hard_vocab_limit=False,
    )
    with pytest.raises(ValueError, match=r"special ids .* expected \(0, 1, 2, 3\)"):
        SentencePieceTokenizer.from_file(str(tmp_path / "default.model"))
    with pytest.raises(ValueError, match="cannot read sentencepiece model"):
        SentencePieceTokenizer.from_file(str(tmp_path / "missing.model"))


def test_char_round_trip_and_unknown_characters():
    tokenizer = CharTokenizer.build(TEXT)
    assert tokenizer.decode(tokenizer.encode(TEXT)) == TEXT  # line breaks included
    ids = tokenizer.encode("fox€")
    assert ids[-1] == UNK_ID and UNK_ID not in ids[:-1]
    assert tokenizer.decode(ids) == "fox" + UNKNOWN_TEXT
    assert tokenizer.unknown_pieces("fox€ ¿?") == sorted({"€", "¿", "?"})
    # specials other than <unk> decode to nothing
    assert tokenizer.decode([BOS_ID, *tokenizer.encode("dog"), EOS_ID, PAD_ID]) == "dog"


def test_char_vocabulary_limits():
    tokenizer = CharTokenizer.build("aaab", min_count=2)
    assert tokenizer.tokens == [*SPECIAL_TOKENS, "a"]
    assert CharTokenizer.build("aaabbc", max_size=6).tokens == [*SPECIAL_TOKENS, "a", "b"]


def test_word_round_trip_keeps_lines_and_marks_unknown_words():
    tokenizer = WordTokenizer.build(TEXT, min_count=1)
    # whitespace is normalised to single spaces, but line breaks are tokens of their own
    assert tokenizer.decode(tokenizer.encode(TEXT)) == TEXT.rstrip("\n") + "\n"
    assert tokenizer.decode(tokenizer.encode("the  lazy\tdog")) == "the lazy dog"
    ids = tokenizer.encode("the purple dog")
    assert ids[1] == UNK_ID and UNK_ID not in (ids[0], ids[2])
    assert tokenizer.decode(ids) == f"the {UNKNOWN_TEXT} dog"
    assert tokenizer.unknown_pieces("the purple dog and cat") == ["cat", "purple"]


def test_word_vocabulary_is_ordered_by_frequency_and_filtered():
    tokenizer = WordTokenizer.build("b a b c b a", min_count=2)
    assert tokenizer.tokens == [*SPECIAL_TOKENS, "b", "a"]
    assert tokenizer.encode("c") == [UNK_ID]


def test_sentencepiece_round_trip_and_unknown_symbols(sentencepiece_files):
    plain, _ = sentencepiece_files
    for line in TEXT.splitlines():
        ids = plain.encode(line)
        assert UNK_ID not in ids
        assert plain.decode(ids) == line
        assert plain.decode([BOS_ID, *ids, EOS_ID, PAD_ID]) == line
    ids = plain.encode("fox 漢字")
    assert UNK_ID in ids
    assert plain.unknown_pieces("fox 漢字") == ["漢字"]
    assert plain.decode(ids).split() == ["fox", UNKNOWN_TEXT]  # sentencepiece pads the mark
    assert plain.id_to_piece(EOS_ID) == "</s>"  # sentencepiece's name for it


def test_sentencepiece_line_breaks(sentencepiece_files):
    plain, lines = sentencepiece_files
    assert plain.newline_id is None
    assert lines.newline_id is not None and lines.newline_id > EOS_ID
    assert lines.id_to_piece(lines.newline_id) == "<nl>"
    text = "the lazy dog\n\nel perro\n"
    ids = lines.encode(text)
    assert ids.count(lines.newline_id) == 3
    assert lines.decode(ids) == text
    assert lines.unknown_pieces(text) == []


ENGLISH = [line for line in TEXT.splitlines() if line.startswith(("the", "a "))]


def test_a_subset_keeps_the_pieces_of_its_text_and_every_character(sentencepiece_files):
    plain, _ = sentencepiece_files
    subset = SentencePieceSubsetTokenizer.from_text(plain, ENGLISH)
    assert subset.vocab_size < plain.vocab_size
    assert subset.piece_ids[:4] == [PAD_ID, UNK_ID, BOS_ID, EOS_ID]
    kept = {plain.id_to_piece(i) for i in subset.piece_ids}
    for line in ENGLISH:
        assert {plain.id_to_piece(i) for i in plain.encode(line)} <= kept
        ids = subset.encode(line)
        assert max(ids) < subset.vocab_size and UNK_ID not in ids
        assert subset.decode(ids) == line
        assert subset.decode([BOS_ID, *ids, EOS_ID, PAD_ID]) == line
        assert [subset.id_to_piece(i) for i in ids] == [
            plain.id_to_piece(i) for i in plain.encode(line)
        ]
    for i in range(4, plain.vocab_size):
        if len(plain.id_to_piece(i).lstrip("\u2581")) <= 1:
            assert plain.id_to_piece(i) in kept


def test_a_subset_spells_pieces_it_lacks_with_characters(sentencepiece_files):
    plain, _ = sentencepiece_files
    subset = SentencePieceSubsetTokenizer.from_text(plain, ENGLISH)
    german = "der schnelle braune Fuchs springt"
    missing = [i for i in plain.encode(german) if i not in subset.compact]
    assert missing, "the German line should use pieces the English lines do not"
    ids = subset.encode(german)
    assert UNK_ID not in ids and len(ids) > len(plain.encode(german))
    assert subset.decode(ids) == german
    assert subset.encode("fox 漢字").count(UNK_ID) == 1


def test_a_subset_refuses_bad_piece_lists(sentencepiece_files, tmp_path):
    plain, _ = sentencepiece_files
    with pytest.raises(ValueError, match="must start with the special ids"):
        SentencePieceSubsetTokenizer(plain, [5, 6, 7])
    with pytest.raises(ValueError, match="distinct ids below 60"):
        SentencePieceSubsetTokenizer(plain, [0, 1, 2, 3, 4, 4])
    with pytest.raises(ValueError, match="distinct ids below 60"):
        SentencePieceSubsetTokenizer(plain, [0, 1, 2, 3, 60])
    spec = SentencePieceSubsetTokenizer.from_text(plain, ENGLISH).save(str(tmp_path), "target")
    (tmp_path / spec["pieces"]).write_text("[1, 2", encoding="utf-8")
    with pytest.raises(ValueError, match="target.pieces.json: not a piece-subset file"):
        load_tokenizer(spec, str(tmp_path))
    (tmp_path / spec["pieces"]).write_text('{"piece_ids": [9, 1]}', encoding="utf-8")
    with pytest.raises(ValueError, match="target.pieces.json: a piece subset must start"):
        load_tokenizer(spec, str(tmp_path))


@pytest.mark.parametrize("kind", ["char", "word", "sentencepiece", "sentencepiece_subset"])
def test_save_load_and_state_round_trips(kind, tmp_path, sentencepiece_files):
    tokenizer = {
        "char": lambda: CharTokenizer.build(TEXT),
        "word": lambda: WordTokenizer.build(TEXT, min_count=1),
        "sentencepiece": lambda: sentencepiece_files[1],
        "sentencepiece_subset": lambda: SentencePieceSubsetTokenizer.from_text(
            sentencepiece_files[0], ENGLISH
        ),
    }[kind]()
    spec = tokenizer.save(str(tmp_path), "source")
    assert spec["kind"] == kind
    assert (tmp_path / spec["file"]).is_file()
    for copy in (load_tokenizer(spec, str(tmp_path)), tokenizer_from_state(tokenizer.state())):
        assert type(copy) is type(tokenizer)
        assert copy.vocab_size == tokenizer.vocab_size
        assert copy.encode(TEXT) == tokenizer.encode(TEXT)
        assert copy.decode(tokenizer.encode(TEXT)) == tokenizer.decode(tokenizer.encode(TEXT))
        assert copy.state() == tokenizer.state()


def test_loading_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="unknown tokenizer kind 'bpe'"):
        load_tokenizer({"kind": "bpe", "file": "x"}, str(tmp_path))
    with pytest.raises(ValueError, match="unknown tokenizer kind"):
        tokenizer_from_state({"kind": "nope"})
    spec = WordTokenizer.build("a b", min_count=1).save(str(tmp_path), "vocab")
    with pytest.raises(ValueError, match="holds a 'word' vocabulary, not 'char'"):
        CharTokenizer.load_file(str(tmp_path / spec["file"]))
