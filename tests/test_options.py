"""export/runtime/options.py: one set of decoding options, validated once, in both runtimes and
in the commands' flags. Every invalid value is a ValueError naming the option and what it
allows; options of the other model kind are refused, not ignored."""

from __future__ import annotations

import pytest
from lm_helpers import export_random_lm

from export.runtime import DecodingOptions, Generator, Translator

# (settings, words the message must contain): each invalid option alone
INVALID = [
    (dict(beam=0), "beam must be an integer >= 1, got 0"),
    (dict(beam=2.0), "beam must be an integer >= 1"),
    (dict(beam=True), "beam must be an integer >= 1"),
    (dict(sample="yes"), "sample must be true or false"),
    (dict(temperature=-0.5), "temperature must be at least 0"),
    (dict(temperature=float("nan")), "temperature must be at least 0"),
    (dict(top_k=-1), "top_k must be at least 0"),
    (dict(top_p=0), "top_p must be in (0, 1], got 0"),
    (dict(top_p=1.5), "top_p must be in (0, 1]"),
    (dict(seed=-1), "seed must be an integer >= 0, or None"),
    (dict(seed="1"), "seed must be an integer >= 0"),
    (dict(n_best=0), "n_best must be an integer >= 1"),
    (dict(length_penalty=float("inf")), "length_penalty must be a finite number"),
    (dict(min_length=-1), "min_length must be an integer >= 0"),
    (dict(max_length=0), "max_length must be an int >= 1 or a pair"),
    (dict(max_length=(1.0, 2, 3)), "max_length must be an int >= 1 or a pair"),
    (dict(max_length=(-1.0, 5)), "max_length ratio must be a number >= 0"),
    (dict(max_length=(0.0, 0)), "allows no output token"),
    (dict(max_tokens=-1), "max_tokens must be an integer >= 0"),
    (dict(no_repeat_ngram=-2), "no_repeat_ngram must be at least 0"),
    (dict(repetition_penalty=0), "repetition_penalty must be a number > 0"),
    (dict(stop=[1]), "stop must be strings"),
    (dict(beam=3, sample=True), "not both"),
    (dict(beam=2, n_best=4), "n_best 4 needs a beam at least as wide"),
]


@pytest.mark.parametrize("settings, message", INVALID)
def test_each_invalid_option_is_refused_by_name(settings, message):
    with pytest.raises(ValueError) as error:
        DecodingOptions(**settings)
    assert message in str(error.value)


TRANSLATION_INVALID = [(s, m) for s, m in INVALID if not set(s) & {"max_tokens", "stop"}] + [
    (dict(stop="."), "stop applies to language model models only"),
    (dict(max_tokens=5), "max_tokens applies to language model models only"),
    (dict(beam=3, repetition_penalty=1.2), "not beam"),
    (dict(bream=3), "unknown decoding option 'bream'; did you mean 'beam'?"),
]


@pytest.mark.parametrize("settings, message", TRANSLATION_INVALID)
def test_translator_refuses_each_invalid_option(translation_bundle, settings, message):
    translator = Translator.load(translation_bundle)
    with pytest.raises(ValueError) as error:
        translator.translate(["el gato"], **settings)
    assert message in str(error.value)


def test_top_p_zero_no_longer_returns_padding(translation_bundle):
    """Before the options were shared, top_p=0 silently decoded <pad> tokens."""
    translator = Translator.load(translation_bundle)
    with pytest.raises(ValueError, match="top_p"):
        translator.translate(["el gato"], sample=True, top_p=0.0, seed=1)


def test_options_object_and_keywords_agree(translation_bundle):
    translator = Translator.load(translation_bundle)
    options = DecodingOptions(beam=3, n_best=2)
    by_object = translator.translate(["el gato come", "la mesa"], options)
    by_keywords = translator.translate(["el gato come", "la mesa"], beam=3, n_best=2)
    assert by_object == by_keywords
    # keywords refine an options object
    assert translator.translate(["el gato"], options, beam=4)[0].hypotheses == (
        translator.translate(["el gato"], beam=4, n_best=2)[0].hypotheses
    )


@pytest.fixture(scope="module")
def generator(tmp_path_factory):
    return Generator.load(export_random_lm(tmp_path_factory.mktemp("lm")).bundle)


GENERATION_INVALID = [
    (s, m)
    for s, m in INVALID
    if not set(s) & {"beam", "sample", "n_best", "max_length"}
    and "length_penalty" not in s
    and "min_length" not in s
] + [
    (dict(beam=4), "beam applies to translation models only"),
    (dict(length_penalty=0.5), "length_penalty applies to translation models only"),
    (dict(max_length=(1.0, 3)), "max_length applies to translation models only"),
]


@pytest.mark.parametrize("settings, message", GENERATION_INVALID)
def test_generator_refuses_each_invalid_option(generator, settings, message):
    with pytest.raises(ValueError) as error:
        generator.generate(["the"], **settings)
    assert message in str(error.value)
    with pytest.raises(ValueError):
        generator.stream("the", **settings)  # checked before the first piece, not lazily


def test_no_repeat_ngram_now_reaches_generation(generator):
    text = generator.generate(["the"], max_tokens=60, temperature=0, no_repeat_ngram=2)[0]
    pairs = list(zip(text, text[1:]))
    assert len(pairs) == len(set(pairs))  # char level: no character bigram twice
