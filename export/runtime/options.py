"""Decoding options: one small dataclass, validated once, shared by every model kind that writes
text (``Translator.translate``, ``Generator.generate`` / ``stream``, the commands' flags and the
HTTP service).

    options = DecodingOptions(beam=5, n_best=2)
    translator.translate(sentences, options)            # or translate(sentences, beam=5, n_best=2)
    generator.stream("Once upon", top_p=0.9, seed=1)

Every invalid value raises ``ValueError`` naming the option and the values it allows; an option
that does not apply to a model kind (``stop`` for translation, ``beam`` for a language model)
raises ``ValueError`` too, instead of being silently ignored. numpy-free, torch-free.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


def _help(text: str, applies_to: tuple[str, ...] = ("translation", "language_model")):
    return {"help": text, "applies_to": applies_to}


TRANSLATION = ("translation",)
GENERATION = ("language_model",)


@dataclass(frozen=True)
class DecodingOptions:
    """How output tokens are chosen. Defaults: greedy search for translation, sampling at
    temperature 1 for a language model (temperature 0 is greedy there)."""

    beam: int = field(default=1, metadata=_help("beam size (1: greedy search)", TRANSLATION))
    sample: bool = field(
        default=False,
        metadata=_help(
            "translation: draw tokens from the model instead of searching (a language model "
            "always draws, unless temperature is 0)",
            TRANSLATION,
        ),
    )
    temperature: float = field(
        default=1.0, metadata=_help("sampling temperature (0: always the most likely token)")
    )
    top_k: int = field(default=0, metadata=_help("sample from the k most likely tokens (0: all)"))
    top_p: float = field(
        default=1.0,
        metadata=_help("nucleus sampling: the smallest set of tokens reaching this mass (1: all)"),
    )
    seed: int | None = field(
        default=None, metadata=_help("random seed: the same seed gives the same output")
    )
    n_best: int = field(
        default=1, metadata=_help("hypotheses returned per input (at most the beam)", TRANSLATION)
    )
    length_penalty: float = field(
        default=1.0,
        metadata=_help("beam search ranks by score / length ** this (0: raw sum)", TRANSLATION),
    )
    min_length: int = field(
        default=0, metadata=_help("output tokens before the end may be chosen", TRANSLATION)
    )
    max_length: tuple[float, int] | int = field(
        default=(2.0, 10),
        metadata=_help(
            "(ratio, constant): at most ratio x source tokens + constant output tokens; an int "
            "is a fixed limit",
            TRANSLATION,
        ),
    )
    max_tokens: int = field(default=200, metadata=_help("tokens to generate at most", GENERATION))
    no_repeat_ngram: int = field(
        default=0, metadata=_help("never repeat an n-gram of this size (0: off)")
    )
    repetition_penalty: float = field(
        default=1.0,
        metadata=_help(
            "above 1: tokens already in the input or the output become less likely (1: off)"
        ),
    )
    stop: tuple[str, ...] = field(
        default=(), metadata=_help("end the text before the first of these strings", GENERATION)
    )

    def __post_init__(self) -> None:
        if isinstance(self.stop, str):
            object.__setattr__(self, "stop", (self.stop,) if self.stop else ())
        elif self.stop is None:
            object.__setattr__(self, "stop", ())
        elif isinstance(self.stop, Sequence):
            object.__setattr__(self, "stop", tuple(self.stop))
        if isinstance(self.max_length, list):
            object.__setattr__(self, "max_length", tuple(self.max_length))
        self._validate()

    # ----------------------------------------------------------------- checks

    def _validate(self) -> None:
        _integer("beam", self.beam, minimum=1)
        _boolean("sample", self.sample)
        _number("temperature", self.temperature, minimum=0.0, allowed="at least 0 (0: greedy)")
        _integer("top_k", self.top_k, minimum=0, allowed="at least 0 (0: off)")
        _number("top_p", self.top_p, allowed="in (0, 1]")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p!r}")
        if self.seed is not None:
            _integer("seed", self.seed, minimum=0, allowed="an integer >= 0, or None")
        _integer("n_best", self.n_best, minimum=1)
        _number("length_penalty", self.length_penalty, allowed="a finite number")
        _integer("min_length", self.min_length, minimum=0)
        if isinstance(self.max_length, tuple):
            if len(self.max_length) != 2:
                raise ValueError(
                    f"max_length must be an int >= 1 or a pair (ratio >= 0, constant >= 0), "
                    f"got {self.max_length!r}"
                )
            ratio, constant = self.max_length
            _number("max_length ratio", ratio, minimum=0.0)
            _integer("max_length constant", constant, minimum=0)
            if ratio == 0 and constant == 0:
                raise ValueError("max_length (0, 0) allows no output token; use at least (0, 1)")
        else:
            _integer("max_length", self.max_length, minimum=1, allowed="an int >= 1 or a pair")
        _integer("max_tokens", self.max_tokens, minimum=0)
        _integer("no_repeat_ngram", self.no_repeat_ngram, minimum=0, allowed="at least 0 (0: off)")
        _number("repetition_penalty", self.repetition_penalty, allowed="a number > 0 (1: off)")
        if self.repetition_penalty <= 0:
            raise ValueError(
                f"repetition_penalty must be a number > 0 (1: off), got {self.repetition_penalty!r}"
            )
        for stop in self.stop:
            if not isinstance(stop, str):
                raise ValueError(f"stop must be strings, got {type(stop).__name__} {stop!r}")
        if self.sample and self.beam > 1:
            raise ValueError("choose beam search (beam > 1) or sampling (sample), not both")
        if self.n_best > self.beam:
            raise ValueError(
                f"n_best {self.n_best} needs a beam at least as wide (beam {self.beam})"
            )

    def check_for(self, kind: str) -> DecodingOptions:
        """Refuse options that do not apply to a model of ``kind`` ("translation" or
        "language_model") but were set away from their default; return self."""
        defaults = DecodingOptions()
        for f in dataclasses.fields(self):
            if kind in f.metadata["applies_to"]:
                continue
            if getattr(self, f.name) != getattr(defaults, f.name):
                users = " and ".join(k.replace("_", " ") for k in f.metadata["applies_to"])
                raise ValueError(
                    f"{f.name} applies to {users} models only, not to a "
                    f"{kind.replace('_', ' ')} model"
                )
        if kind == "translation" and self.beam > 1 and self.repetition_penalty != 1.0:
            raise ValueError("repetition_penalty works with greedy search and sampling, not beam")
        return self

    def replace(self, **changes) -> DecodingOptions:
        """A copy with ``changes`` applied (and validated); unknown names raise ValueError."""
        _check_names(changes)
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


OPTION_NAMES = tuple(f.name for f in dataclasses.fields(DecodingOptions))


def _check_names(settings: Mapping) -> None:
    for name in settings:
        if name not in OPTION_NAMES:
            close = difflib.get_close_matches(name, OPTION_NAMES, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"unknown decoding option {name!r}{hint}")


def resolve_options(
    options: DecodingOptions | None, settings: Mapping, kind: str
) -> DecodingOptions:
    """``options`` (or the defaults) with keyword ``settings`` applied, checked for ``kind``."""
    if options is not None and not isinstance(options, DecodingOptions):
        raise TypeError(f"options must be a DecodingOptions, not {type(options).__name__}")
    base = options if options is not None else DecodingOptions()
    resolved = base.replace(**settings) if settings else base
    return resolved.check_for(kind)


def _integer(name: str, value, minimum: int, allowed: str | None = None) -> None:
    allowed = allowed or f"an integer >= {minimum}"
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be {allowed}, got {value!r}")


def _number(name: str, value, minimum: float | None = None, allowed: str | None = None) -> None:
    allowed = allowed or (f"a number >= {minimum:g}" if minimum is not None else "a number")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be {allowed}, got {value!r}")


def _boolean(name: str, value) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")
