"""export.runtime.seeds: one random stream per row, so that a sentence samples the same text
whatever else shares its batch, and a one-row call samples exactly as one stream seeded s."""

from __future__ import annotations

import numpy as np
from conftest import SENTENCES
from test_search import EOS, ToyModel

from export.runtime import Translator
from export.runtime.search import choose_tokens, sample_search
from export.runtime.seeds import row_seed, row_seeds


def test_row_zero_keeps_the_plain_seed():
    assert row_seeds(5, 3) == [5, (5, 1), (5, 2)]
    assert row_seeds(None, 2) == [None, None]
    assert row_seed(5, 0) == 5


def test_a_one_row_call_samples_as_a_single_stream_seeded_s():
    model = ToyModel(vocab=8, seed=0, scale=0.6, bias=[0, 0, 0, -1.0, 0, 0, 0, 0])
    starts = np.asarray([2])
    (found,) = sample_search(model.step_function(1), starts, 100, EOS, temperature=1.0, seed=9)
    assert found.finished and len(found.tokens) > 1
    # the same draws from one numpy Generator seeded 9, token by token
    rng, step, tokens = np.random.default_rng(9), model.step_function(1), []
    token, origin = starts, np.asarray([0])
    while True:
        choice = int(choose_tokens(step(token, origin), 1.0, rng=rng)[0])
        if choice == EOS:
            break
        tokens.append(choice)
        token = np.asarray([choice])
    assert found.tokens == tokens


def test_rows_sample_the_same_batched_or_alone():
    model = ToyModel(vocab=8, seed=1, scale=0.5)
    starts = np.asarray([2, 2, 2, 2, 2])
    seeds = [row_seed(3, i) for i in range(5)]
    batched = sample_search(model.step_function(5), starts, 10, EOS, temperature=1.0, seed=seeds)
    for row, seed in enumerate(seeds):
        (alone,) = sample_search(
            model.step_function(1), starts[:1], 10, EOS, temperature=1.0, seed=[seed]
        )
        assert alone.tokens == batched[row].tokens
    assert len({tuple(h.tokens) for h in batched}) > 1  # the rows do differ from each other


def test_a_sentence_samples_the_same_whatever_the_batch_size(translation_bundle):
    translator = Translator.load(translation_bundle)
    options = dict(sample=True, temperature=1.5, seed=4)
    texts = [
        [t.text for t in translator.translate(SENTENCES, batch_size=b, **options)]
        for b in (1, 3, 32)
    ]
    assert texts[0] == texts[1] == texts[2]
    assert translator.translate(SENTENCES[:1], **options)[0].text == texts[0][0]
    assert texts[0] != [
        t.text for t in translator.translate(SENTENCES, sample=True, temperature=1.5, seed=5)
    ]
