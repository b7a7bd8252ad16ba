"""Tokenizers shared by training and the runtime: sentencepiece subwords, characters, words.

Every tokenizer uses the same four special ids, so models, search and bundles never need to ask:
``PAD_ID = 0``, ``UNK_ID = 1``, ``BOS_ID = 2``, ``EOS_ID = 3``. Real tokens start at 4 for the
character and word vocabularies; sentencepiece models are trained with the same reserved ids.

A tokenizer is described in ``model.json`` by a small spec (``{"kind": "char", "file":
"vocab.json"}``) and loaded with :func:`load_tokenizer`. Imports no torch.
"""

from __future__ import annotations

import collections
import json
import os
import re
from collections.abc import Iterable, Sequence

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
SPECIAL_TOKENS = ("<pad>", "<unk>", "<bos>", "<eos>")
UNKNOWN_TEXT = "\u2047"  # what an <unk> id decodes to (sentencepiece uses the same mark)

_WORD_PATTERN = re.compile(r"\n|[^\s]+")


class Tokenizer:
    """Maps text to ids and back. Subclasses set ``kind`` and implement the four methods."""

    kind = "abstract"
    pad_id, unk_id, bos_id, eos_id = PAD_ID, UNK_ID, BOS_ID, EOS_ID

    @property
    def vocab_size(self) -> int:
        raise NotImplementedError

    def encode(self, text: str) -> list[int]:
        raise NotImplementedError

    def decode(self, ids: Iterable[int]) -> str:
        raise NotImplementedError

    def save(self, directory: str, name: str) -> dict:
        """Write the tokenizer's files into ``directory``; return the spec for ``model.json``."""
        raise NotImplementedError

    def state(self) -> dict:
        """Everything needed to rebuild the tokenizer, for checkpoints (see ``from_state``)."""
        raise NotImplementedError

    def id_to_piece(self, token_id: int) -> str:
        raise NotImplementedError

    def unknown_pieces(self, text: str) -> list[str]:
        """The parts of ``text`` this vocabulary cannot represent (they would become <unk>)."""
        raise NotImplementedError


class _ListVocabulary(Tokenizer):
    """A vocabulary stored as a list of token strings, specials first."""

    def __init__(self, tokens: Sequence[str]):
        tokens = list(tokens)
        if tuple(tokens[: len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
            tokens = list(SPECIAL_TOKENS) + [t for t in tokens if t not in SPECIAL_TOKENS]
        self.tokens = tokens
        self.index = {t: i for i, t in enumerate(tokens)}

    @property
    def vocab_size(self) -> int:
        return len(self.tokens)

    def id_to_piece(self, token_id: int) -> str:
        return self.tokens[token_id]

    def save(self, directory: str, name: str) -> dict:
        filename = f"{name}.vocab.json"
        with open(os.path.join(directory, filename), "w", encoding="utf-8") as f:
            json.dump({"kind": self.kind, "tokens": self.tokens}, f, ensure_ascii=False)
        return {"kind": self.kind, "file": filename}

    def state(self) -> dict:
        return {"kind": self.kind, "tokens": self.tokens}

    @classmethod
    def load_file(cls, path: str):
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"{path}: not a vocabulary file ({error})") from None
        if not isinstance(data, dict) or not isinstance(data.get("tokens"), list):
            raise ValueError(f"{path}: not a vocabulary file (no token list)")
        if data.get("kind") != cls.kind:
            raise ValueError(f"{path}: holds a {data.get('kind')!r} vocabulary, not {cls.kind!r}")
        return cls(data["tokens"])

    def _split(self, text: str) -> list[str]:
        raise NotImplementedError

    def encode(self, text: str) -> list[int]:
        index = self.index
        return [index.get(t, UNK_ID) for t in self._split(text)]

    def unknown_pieces(self, text: str) -> list[str]:
        return sorted({t for t in self._split(text) if t not in self.index})

    @classmethod
    def _from_counts(cls, counts: collections.Counter, min_count: int, max_size: int | None):
        ranked = sorted(
            (t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t)
        )
        if max_size is not None:
            ranked = ranked[: max(0, max_size - len(SPECIAL_TOKENS))]
        return cls(list(SPECIAL_TOKENS) + ranked)


class CharTokenizer(_ListVocabulary):
    """One id per character; characters not in the vocabulary become <unk>."""

    kind = "char"

    def _split(self, text: str) -> list[str]:
        return list(text)

    def decode(self, ids: Iterable[int]) -> str:
        out = []
        for i in ids:
            i = int(i)
            if i == UNK_ID:
                out.append(UNKNOWN_TEXT)
            elif i >= len(SPECIAL_TOKENS):
                out.append(self.tokens[i])
        return "".join(out)

    @classmethod
    def build(cls, text: str, min_count: int = 1, max_size: int | None = None) -> CharTokenizer:
        """Vocabulary of the characters of ``text`` seen at least ``min_count`` times."""
        return cls._from_counts(collections.Counter(text), min_count, max_size)


class WordTokenizer(_ListVocabulary):
    """Whitespace-separated words; a line break is a token of its own, so text keeps its lines."""

    kind = "word"

    def _split(self, text: str) -> list[str]:
        return _WORD_PATTERN.findall(text)

    def decode(self, ids: Iterable[int]) -> str:
        out: list[str] = []
        for i in ids:
            i = int(i)
            if i == UNK_ID:
                word = UNKNOWN_TEXT
            elif i >= len(SPECIAL_TOKENS):
                word = self.tokens[i]
            else:
                continue
            if word != "\n" and out and out[-1] != "\n":
                out.append(" ")
            out.append(word)
        return "".join(out)

    @classmethod
    def build(cls, text: str, min_count: int = 2, max_size: int | None = None) -> WordTokenizer:
        """Vocabulary of the words seen at least ``min_count`` times, most frequent first."""
        counts = collections.Counter(_WORD_PATTERN.findall(text))
        return cls._from_counts(counts, min_count, max_size)


class SentencePieceTokenizer(Tokenizer):
    """A sentencepiece model. With ``line_breaks`` a line break is encoded as its own id (the
    piece ``<nl>``), which language models need; translation encodes single lines without it."""

    kind = "sentencepiece"
    NEWLINE_PIECE = "<nl>"

    def __init__(self, model_proto: bytes, origin: str = "sentencepiece model"):
        import sentencepiece as spm

        self.model_proto = model_proto
        try:
            self.processor = spm.SentencePieceProcessor(model_proto=model_proto)
        except (OSError, RuntimeError) as error:
            raise ValueError(f"{origin}: not a readable sentencepiece model ({error})") from None
        ids = (
            self.processor.pad_id(),
            self.processor.unk_id(),
            self.processor.bos_id(),
            self.processor.eos_id(),
        )
        if ids != (PAD_ID, UNK_ID, BOS_ID, EOS_ID):
            raise ValueError(
                f"{origin}: special ids (pad, unk, bos, eos) are {ids}, expected "
                f"{(PAD_ID, UNK_ID, BOS_ID, EOS_ID)}, as in the models this toolkit trains"
            )
        newline = self.processor.piece_to_id(self.NEWLINE_PIECE)
        self.newline_id = newline if newline != UNK_ID else None

    @classmethod
    def from_file(cls, path: str) -> SentencePieceTokenizer:
        try:
            with open(path, "rb") as f:
                return cls(f.read(), origin=path)
        except OSError as error:
            message = f"{path}: cannot read sentencepiece model ({error.strerror})"
            raise ValueError(message) from None

    @property
    def vocab_size(self) -> int:
        return self.processor.get_piece_size()

    def id_to_piece(self, token_id: int) -> str:
        return self.processor.id_to_piece(int(token_id))

    def encode(self, text: str) -> list[int]:
        if self.newline_id is None or "\n" not in text:
            return self.processor.encode(text)
        ids: list[int] = []
        lines = text.split("\n")
        for k, line in enumerate(lines):
            if line:
                ids.extend(self.processor.encode(line))
            if k < len(lines) - 1:
                ids.append(self.newline_id)
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        ids = [int(i) for i in ids if int(i) not in (PAD_ID, BOS_ID, EOS_ID)]
        if self.newline_id is None:
            return self.processor.decode(ids)
        lines, current = [], []
        for i in ids:
            if i == self.newline_id:
                lines.append(current)
                current = []
            else:
                current.append(i)
        lines.append(current)
        return "\n".join(self.processor.decode(line) for line in lines)

    def unknown_pieces(self, text: str) -> list[str]:
        # ids and string pieces rather than the proto output: its name changed between
        # sentencepiece versions ("immutable_proto" is refused from 0.2.1 on). An <unk> piece's
        # string is the text it covers.
        unknown = set()
        for line in text.split("\n"):
            ids = self.processor.encode(line)
            pieces = self.processor.encode(line, out_type=str)
            for token_id, piece in zip(ids, pieces):
                if token_id == UNK_ID and piece.replace("\u2581", " ").strip():
                    unknown.add(piece.replace("\u2581", " ").strip())
        return sorted(unknown)

    def save(self, directory: str, name: str) -> dict:
        filename = f"{name}.model"
        with open(os.path.join(directory, filename), "wb") as f:
            f.write(self.model_proto)
        return {"kind": self.kind, "file": filename}

    def state(self) -> dict:
        return {"kind": self.kind, "model_proto": self.model_proto}


class SentencePieceSubsetTokenizer(Tokenizer):
    """A sentencepiece model restricted to a subset of its pieces, with ids renumbered 0..n-1.

    Made for the target side of a joint vocabulary: of a joint Spanish-English model's 8,000
    pieces, English text uses about half. Giving the target side only the pieces its training
    text uses (plus every single character, so any word can still be spelled) halves the output
    layer, the biggest cost of training and decoding, and changes nothing the model could
    have learned to write. ``piece_ids[i]`` is the sentencepiece id of compact id ``i``; the
    four special ids come first and keep their values. A piece outside the subset encodes as
    its characters where they are in the subset, else as <unk>."""

    kind = "sentencepiece_subset"

    def __init__(self, base: SentencePieceTokenizer, piece_ids: Sequence[int]):
        piece_ids = [int(i) for i in piece_ids]
        if piece_ids[: len(SPECIAL_TOKENS)] != [PAD_ID, UNK_ID, BOS_ID, EOS_ID]:
            raise ValueError("a piece subset must start with the special ids 0, 1, 2, 3")
        size = base.vocab_size
        if len(set(piece_ids)) != len(piece_ids) or not all(0 <= i < size for i in piece_ids):
            raise ValueError(f"a piece subset needs distinct ids below {size}")
        self.base = base
        self.piece_ids = piece_ids
        self.compact = {piece: i for i, piece in enumerate(piece_ids)}
        self.newline_id = self.compact.get(base.newline_id) if base.newline_id else None

    @classmethod
    def from_text(
        cls, base: SentencePieceTokenizer, lines: Iterable[str]
    ) -> SentencePieceSubsetTokenizer:
        """The subset of ``base`` that ``lines`` use, plus every single-character piece."""
        processor = base.processor
        used = set()
        for line in lines:
            used.update(processor.encode(line))
        for i in range(len(SPECIAL_TOKENS), base.vocab_size):
            if len(processor.id_to_piece(i).lstrip("\u2581")) <= 1:
                used.add(i)
        rest = sorted(used - {PAD_ID, UNK_ID, BOS_ID, EOS_ID})
        return cls(base, [PAD_ID, UNK_ID, BOS_ID, EOS_ID, *rest])

    @property
    def vocab_size(self) -> int:
        return len(self.piece_ids)

    def id_to_piece(self, token_id: int) -> str:
        return self.base.id_to_piece(self.piece_ids[int(token_id)])

    def encode(self, text: str) -> list[int]:
        compact, out = self.compact, []
        for piece in self.base.encode(text):
            if piece in compact:
                out.append(compact[piece])
                continue
            # spell a piece outside the subset with the subset's single characters
            for char in self.base.processor.id_to_piece(piece):
                out.append(compact.get(self.base.processor.piece_to_id(char), UNK_ID))
        return out

    def decode(self, ids: Iterable[int]) -> str:
        return self.base.decode(self.piece_ids[int(i)] for i in ids)

    def unknown_pieces(self, text: str) -> list[str]:
        return self.base.unknown_pieces(text)

    def save(self, directory: str, name: str, model_file: str | None = None) -> dict:
        """Write ``name.pieces.json`` and the sentencepiece model, unless ``model_file`` names
        the copy already in ``directory`` (a joint model, shared with the source side)."""
        if model_file is None:
            model_file = self.base.save(directory, name)["file"]
        pieces = f"{name}.pieces.json"
        self.save_pieces(os.path.join(directory, pieces))
        return {"kind": self.kind, "file": model_file, "pieces": pieces}

    def save_pieces(self, path: str) -> None:
        """Write the subset's piece ids (the sentencepiece model is saved separately)."""
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"kind": self.kind, "piece_ids": self.piece_ids}, f)

    def state(self) -> dict:
        return {
            "kind": self.kind,
            "model_proto": self.base.model_proto,
            "piece_ids": self.piece_ids,
        }

    @classmethod
    def load_files(cls, model_path: str, pieces_path: str) -> SentencePieceSubsetTokenizer:
        base = SentencePieceTokenizer.from_file(model_path)
        try:
            with open(pieces_path, encoding="utf-8") as f:
                data = json.load(f)
            piece_ids = data["piece_ids"]
        except OSError as error:
            raise ValueError(f"{pieces_path}: cannot read ({error.strerror})") from None
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as error:
            raise ValueError(f"{pieces_path}: not a piece-subset file ({error})") from None
        try:
            return cls(base, piece_ids)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{pieces_path}: {error}") from None


def load_tokenizer(spec: dict, directory: str) -> Tokenizer:
    """Load the tokenizer a ``model.json`` spec describes, its files relative to ``directory``.
    A spec or file the runtime cannot use raises :class:`BundleError` naming it."""
    from export.runtime.bundle import BundleError

    if not isinstance(spec, dict) or not isinstance(spec.get("file"), str):
        raise BundleError(f"{directory}: a tokenizer spec needs a kind and a file, got {spec!r}")
    try:
        return _load_tokenizer(spec, directory)
    except (OSError, ValueError, KeyError, TypeError) as error:
        if isinstance(error, BundleError):
            raise
        if isinstance(error, OSError):
            detail = f"{error.filename or spec['file']}: {error.strerror or error}"
        else:
            detail = str(error)
        raise BundleError(f"{directory}: cannot load the tokenizer ({detail})") from None


def _load_tokenizer(spec: dict, directory: str) -> Tokenizer:
    kind = spec.get("kind")
    path = os.path.join(directory, spec["file"])
    if kind == SentencePieceTokenizer.kind:
        return SentencePieceTokenizer.from_file(path)
    if kind == SentencePieceSubsetTokenizer.kind:
        pieces = os.path.join(directory, spec.get("pieces", ""))
        return SentencePieceSubsetTokenizer.load_files(path, pieces)
    if kind == CharTokenizer.kind:
        return CharTokenizer.load_file(path)
    if kind == WordTokenizer.kind:
        return WordTokenizer.load_file(path)
    raise ValueError(
        f"unknown tokenizer kind {kind!r} (char, word, sentencepiece, sentencepiece_subset)"
    )


def tokenizer_from_state(state: dict) -> Tokenizer:
    """Rebuild a tokenizer from :meth:`Tokenizer.state` (as stored in checkpoints)."""
    kind = state.get("kind")
    if kind == SentencePieceTokenizer.kind:
        return SentencePieceTokenizer(state["model_proto"])
    if kind == SentencePieceSubsetTokenizer.kind:
        base = SentencePieceTokenizer(state["model_proto"])
        return SentencePieceSubsetTokenizer(base, state["piece_ids"])
    if kind == CharTokenizer.kind:
        return CharTokenizer(state["tokens"])
    if kind == WordTokenizer.kind:
        return WordTokenizer(state["tokens"])
    raise ValueError(
        f"unknown tokenizer kind {kind!r} (char, word, sentencepiece, sentencepiece_subset)"
    )
