"""Language-model scores that compare across levels: bits per character and per-word perplexity.

A model's total negative log-likelihood of a text does not depend on how the text was cut into
tokens, so dividing it by the text's characters or words (rather than by tokens) makes char,
word and subword models comparable, with one caveat: a word model scores every word outside its
vocabulary as a single <unk>, which makes its figures look better than they are when such
words are common. numpy-free and torch-free.
"""

from __future__ import annotations

import math


def text_scores(nll_sum: float, tokens: int, text: str) -> dict:
    """Scores from the summed NLL (nats) of the ``tokens`` tokens of ``text``:

    - ``bits_per_char``: NLL in bits / characters of the text (line breaks count);
    - ``perplexity_per_word``: exp(NLL / whitespace-separated words of the text);
    - ``nll``, ``ppl``: per token, as the model sees it."""
    characters = len(text)
    words = len(text.split())
    nll = nll_sum / max(1, tokens)
    return {
        "bits_per_char": nll_sum / math.log(2) / max(1, characters),
        "perplexity_per_word": math.exp(min(700.0, nll_sum / max(1, words))),
        "nll": nll,
        "ppl": math.exp(min(700.0, nll)),
        "tokens": tokens,
        "characters": characters,
        "words": words,
    }
