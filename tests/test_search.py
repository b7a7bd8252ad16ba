"""export/search.py: greedy, sampling and beam search over a step function, on toy models whose
log-probabilities are a fixed random function of the whole prefix, so every answer can be checked
by brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from export.runtime.search import (
    apply_constraints,
    beam_search,
    choose_tokens,
    greedy_search,
    length_normalize,
    penalize_repetition,
    sample_search,
)

EOS = 3


class ToyModel:
    """``log_probs(prefix)``: a log-softmax of random logits seeded by the prefix (the start
    token and every token since). ``bias`` [vocab] is added to the logits, to make some tokens
    (EOS, a token to repeat) likely or unlikely."""

    def __init__(self, vocab: int = 4, seed: int = 0, scale: float = 1.0, bias=None):
        self.vocab = vocab
        self.seed = seed
        self.scale = scale
        self.bias = np.zeros(vocab) if bias is None else np.asarray(bias, dtype=np.float64)
        self.calls = 0

    def log_probs(self, prefix: tuple[int, ...]) -> np.ndarray:
        rng = np.random.default_rng([self.seed, len(prefix), *prefix])
        logits = rng.normal(size=self.vocab) * self.scale + self.bias
        logits -= logits.max()
        return logits - np.log(np.exp(logits).sum())

    def step_function(self, batch_size: int):
        """A step function as the search expects: row ``i`` continues row ``origin[i]`` of the
        previous call (on the first call: sentence ``origin[i]``) with ``tokens[i]``."""
        prefixes: list[tuple[int, ...]] = [() for _ in range(batch_size)]

        def step(tokens: np.ndarray, origin: np.ndarray) -> np.ndarray:
            nonlocal prefixes
            assert tokens.dtype == np.int64 and origin.dtype == np.int64
            assert tokens.shape == origin.shape
            prefixes = [prefixes[o] + (t,) for o, t in zip(origin.tolist(), tokens.tolist())]
            self.calls += 1
            return np.stack([self.log_probs(p) for p in prefixes]).astype(np.float32)

        return step

    def sequence_score(self, start: int, tokens: tuple[int, ...]) -> float:
        """log P(tokens, EOS | start) under the toy model (float32 steps, as the search sees)."""
        prefix, total = (start,), 0.0
        for token in (*tokens, EOS):
            total += float(self.log_probs(prefix).astype(np.float32)[token])
            prefix += (token,)
        return total


def exhaustive(model: ToyModel, start: int, max_length: int, min_length: int = 0):
    """Every complete output (up to ``max_length`` tokens, then EOS) with its score, best first."""
    tokens = [t for t in range(model.vocab) if t != EOS]
    outputs = []
    for length in range(min_length, max_length + 1):
        for sequence in itertools.product(tokens, repeat=length):
            outputs.append((model.sequence_score(start, sequence), list(sequence)))
    outputs.sort(key=lambda pair: -pair[0])
    return outputs


def greedy_by_hand(model: ToyModel, start: int, max_length: int) -> list[int]:
    prefix, out = (start,), []
    while len(out) < max_length:
        token = int(model.log_probs(prefix).astype(np.float32).argmax())
        if token == EOS:
            break
        out.append(token)
        prefix += (token,)
    return out


def has_repeated_ngram(tokens: list[int], n: int) -> bool:
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return len(grams) != len(set(grams))


# ----------------------------------------------------------------------------- beam search


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_full_width_beam_search_is_exhaustive_search(seed):
    model = ToyModel(vocab=4, seed=seed, scale=1.5)
    max_length = 4
    expected = exhaustive(model, start=7, max_length=max_length)  # 1 + 3 + 9 + 27 + 81 outputs
    n_best = 20
    found = beam_search(
        model.step_function(1),
        np.array([7]),
        max_length,
        EOS,
        beam_size=128,
        length_penalty=0.0,
        n_best=n_best,
    )[0]
    assert len(found) == n_best
    assert found[0].tokens == expected[0][1]
    assert found[0].score == pytest.approx(expected[0][0], abs=1e-5)
    # the whole n-best list, in order
    assert [h.tokens for h in found] == [tokens for _, tokens in expected[:n_best]]
    assert [h.score for h in found] == pytest.approx([s for s, _ in expected[:n_best]], abs=1e-5)
    assert all(h.finished for h in found)
    assert [h.normalized_score for h in found] == [h.score for h in found]  # penalty 0


def test_full_width_beam_search_with_min_length_is_exhaustive_search():
    model = ToyModel(vocab=4, seed=5, scale=1.5, bias=[0, 0, 0, 2.0])  # EOS is tempting
    expected = exhaustive(model, start=4, max_length=4, min_length=2)
    found = beam_search(
        model.step_function(1),
        np.array([4]),
        4,
        EOS,
        beam_size=128,
        min_length=2,
        length_penalty=0.0,
        n_best=5,
    )[0]
    assert [h.tokens for h in found] == [tokens for _, tokens in expected[:5]]
    assert [h.score for h in found] == pytest.approx([s for s, _ in expected[:5]], abs=1e-5)


def test_narrow_beam_finds_no_better_than_exhaustive_and_ranks_its_n_best():
    model = ToyModel(vocab=6, seed=3, scale=2.0)
    best_score = exhaustive(model, start=4, max_length=4)[0][0]
    found = beam_search(
        model.step_function(1), np.array([4]), 4, EOS, beam_size=3, length_penalty=0.0, n_best=3
    )[0]
    scores = [h.score for h in found]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] <= best_score + 1e-6
    for h in found:  # each reported score is the model's probability of that output
        assert h.score == pytest.approx(model.sequence_score(4, tuple(h.tokens)), abs=1e-5)


def test_length_penalty_ranks_by_normalized_score():
    model = ToyModel(vocab=5, seed=4, scale=1.0)
    found = beam_search(
        model.step_function(1), np.array([4]), 6, EOS, beam_size=8, length_penalty=1.0, n_best=4
    )[0]
    for h in found:
        assert h.normalized_score == pytest.approx(h.score / (len(h.tokens) + 1))
    normalized = [h.normalized_score for h in found]
    assert normalized == sorted(normalized, reverse=True)
    assert length_normalize(-6.0, 3, 1.0) == -2.0
    assert length_normalize(-6.0, 3, 0.0) == -6.0


@pytest.mark.parametrize("seed", range(4))
def test_beam_of_one_is_greedy_search(seed):
    model = ToyModel(vocab=6, seed=seed, scale=1.0)
    starts = np.array([4, 5, 6, 7])
    greedy = greedy_search(model.step_function(4), starts, 8, EOS)
    beam = beam_search(model.step_function(4), starts, 8, EOS, beam_size=1, length_penalty=0.0)
    for g, b, start in zip(greedy, beam, starts.tolist()):
        assert g.tokens == greedy_by_hand(model, start, 8)
        assert b[0].tokens == g.tokens
        assert b[0].score == pytest.approx(g.score, abs=1e-5)


def test_beam_search_checks_n_best():
    model = ToyModel()
    with pytest.raises(ValueError, match="n_best"):
        beam_search(model.step_function(1), np.array([4]), 3, EOS, beam_size=2, n_best=3)


# ----------------------------------------------------------------------------- sampling


def test_sampling_is_reproducible_with_a_seed_and_varies_without():
    model = ToyModel(vocab=8, seed=0, scale=0.3, bias=[0, 0, 0, -3, 0, 0, 0, 0])
    starts = np.arange(4, 12)

    def sample(seed):
        found = sample_search(
            model.step_function(len(starts)), starts, 10, EOS, temperature=1.0, seed=seed
        )
        return [h.tokens for h in found]

    assert sample(11) == sample(11)
    assert sample(11) != sample(12)
    assert sample(11) != [h.tokens for h in greedy_search(model.step_function(8), starts, 10, EOS)]


@pytest.mark.parametrize(
    "options",
    [
        {"temperature": 0.0, "seed": 3},
        {"temperature": 1e-6, "seed": 3},
        {"temperature": 1.0, "top_k": 1, "seed": 3},
        {"temperature": 1.0, "top_p": 1e-6, "seed": 3},
        {"temperature": 5.0, "top_k": 1, "top_p": 0.5, "seed": 9},
    ],
    ids=["temperature-0", "temperature-tiny", "top-k-1", "top-p-tiny", "hot-top-k-1"],
)
def test_degenerate_sampling_is_greedy_search(options):
    model = ToyModel(vocab=8, seed=1, scale=1.0)
    starts = np.arange(4, 10)
    greedy = greedy_search(model.step_function(6), starts, 9, EOS)
    sampled = sample_search(model.step_function(6), starts, 9, EOS, **options)
    assert [h.tokens for h in sampled] == [h.tokens for h in greedy]
    assert [h.score for h in sampled] == pytest.approx([h.score for h in greedy])


def test_choose_tokens_samples_the_distribution_and_respects_top_k_and_top_p():
    probs = np.array([0.1, 0.2, 0.3, 0.4])
    log_probs = np.tile(np.log(probs), (40_000, 1))
    rng = np.random.default_rng(0)
    counts = np.bincount(choose_tokens(log_probs, 1.0, rng=rng), minlength=4) / len(log_probs)
    assert counts == pytest.approx(probs, abs=0.01)
    top_k = np.bincount(choose_tokens(log_probs, 1.0, top_k=2, rng=rng), minlength=4)
    assert top_k[:2].sum() == 0
    assert top_k[3] / top_k.sum() == pytest.approx(0.4 / 0.7, abs=0.01)
    # the nucleus of mass 0.6 is {3, 2}: 0.4 alone is not enough, 0.4 + 0.3 covers it
    top_p = np.bincount(choose_tokens(log_probs, 1.0, top_p=0.6, rng=rng), minlength=4)
    assert top_p[:2].sum() == 0
    assert top_p[3] / top_p.sum() == pytest.approx(0.4 / 0.7, abs=0.01)
    # a low temperature sharpens: p ** 4 normalized
    sharp = np.bincount(choose_tokens(log_probs, 0.25, rng=rng), minlength=4) / len(log_probs)
    assert sharp == pytest.approx(probs**4 / (probs**4).sum(), abs=0.01)


# ----------------------------------------------------------------------------- constraints


@pytest.mark.parametrize("search", ["greedy", "beam", "sample"])
def test_min_length_blocks_eos(search):
    model = ToyModel(vocab=6, seed=2, bias=[0, 0, 0, 6.0, 0, 0])  # EOS almost certain
    starts = np.arange(4, 10)
    run = {
        "greedy": lambda **kw: greedy_search(model.step_function(6), starts, 10, EOS, **kw),
        "sample": lambda **kw: sample_search(
            model.step_function(6), starts, 10, EOS, temperature=1.0, seed=0, **kw
        ),
        "beam": lambda **kw: [
            b[0] for b in beam_search(model.step_function(6), starts, 10, EOS, beam_size=3, **kw)
        ],
    }[search]
    assert all(len(h.tokens) == 0 for h in run())
    constrained = run(min_length=4)
    assert all(len(h.tokens) >= 4 and h.finished for h in constrained)
    assert all(EOS not in h.tokens for h in constrained)


@pytest.mark.parametrize("search", ["greedy", "beam"])
def test_max_length_forces_an_end_per_sentence(search):
    model = ToyModel(vocab=6, seed=2, bias=[0, 0, 0, -8.0, 0, 0])  # EOS almost never chosen
    starts = np.arange(4, 8)
    limits = np.array([1, 5, 3, 0])
    if search == "greedy":
        found = greedy_search(model.step_function(4), starts, limits, EOS)
    else:
        found = [
            b[0] for b in beam_search(model.step_function(4), starts, limits, EOS, beam_size=3)
        ]
    assert [len(h.tokens) for h in found] == limits.tolist()
    for start, h in zip(starts.tolist(), found):
        assert h.finished  # ended by the forced EOS, whose log-probability is in the score
        assert h.score == pytest.approx(model.sequence_score(start, tuple(h.tokens)), abs=1e-5)


def test_without_eos_rows_stop_at_their_own_max_length():
    model = ToyModel(vocab=6, seed=2)
    found = sample_search(
        model.step_function(3),
        np.array([4, 5, 6]),
        np.array([2, 5, 1]),
        eos_id=None,
        temperature=1.0,
        seed=0,
    )
    assert [len(h.tokens) for h in found] == [2, 5, 1]
    assert not any(h.finished for h in found)


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("search", ["greedy", "beam", "sample"])
def test_no_repeat_ngram_prevents_repeats(n, search):
    # token 0 is by far the most likely: unconstrained, every output is 0 0 0 ...
    bias = np.zeros(10)
    bias[0], bias[EOS] = 6.0, -3.0
    model = ToyModel(vocab=10, seed=0, scale=0.5, bias=bias)
    starts = np.arange(4, 8)

    def run(no_repeat_ngram):
        if search == "beam":
            return [
                b[0].tokens
                for b in beam_search(
                    model.step_function(4),
                    starts,
                    12,
                    EOS,
                    beam_size=4,
                    no_repeat_ngram=no_repeat_ngram,
                )
            ]
        temperature = 1.0 if search == "sample" else 0.0
        return [
            h.tokens
            for h in sample_search(
                model.step_function(4),
                starts,
                12,
                EOS,
                temperature=temperature,
                seed=1,
                no_repeat_ngram=no_repeat_ngram,
            )
        ]

    assert all(has_repeated_ngram(tokens, n) for tokens in run(0))
    constrained = run(n)
    assert all(not has_repeated_ngram(tokens, n) for tokens in constrained)
    assert all(len(tokens) >= n for tokens in constrained)


def test_apply_constraints_masks_in_place():
    log_probs = np.log(np.full((2, 5), 0.2, dtype=np.float32))
    apply_constraints(log_probs, 0, np.array([1, 0]), np.array([5, 0]), EOS)
    assert log_probs[0, EOS] == -np.inf and np.isfinite(log_probs[0]).sum() == 4
    assert np.isfinite(log_probs[1]).tolist() == [False, False, False, True, False]
    assert log_probs[1, EOS] == pytest.approx(np.log(0.2))


def test_repetition_penalty_lowers_seen_tokens():
    log_probs = np.log(np.array([[0.5, 0.25, 0.25]], dtype=np.float32))
    penalized = penalize_repetition(log_probs.copy(), [np.array([0])], 2.0)
    assert penalized[0, 0] == pytest.approx(2 * np.log(0.5))
    assert penalized[0, 1:] == pytest.approx(log_probs[0, 1:])


# ----------------------------------------------------------------------------- batching


@pytest.mark.parametrize("search", ["greedy", "beam"])
def test_a_sentence_searches_the_same_alone_and_in_a_batch(search):
    """Sentences with different length limits finish at different steps; rows are dropped and
    reordered under each other. Each must come out exactly as when searched alone."""
    model = ToyModel(vocab=7, seed=6, scale=1.5)
    starts = np.array([4, 5, 6, 7, 8])
    limits = np.array([2, 7, 4, 0, 5])
    min_lengths = np.array([0, 3, 1, 0, 2])

    def run(indices):
        rows = np.asarray(indices)
        step = model.step_function(len(rows))
        if search == "greedy":
            return [
                [h] for h in greedy_search(step, starts[rows], limits[rows], EOS, min_lengths[rows])
            ]
        return beam_search(
            step,
            starts[rows],
            limits[rows],
            EOS,
            beam_size=3,
            min_length=min_lengths[rows],
            length_penalty=1.0,
            n_best=2,
        )

    together = run(range(len(starts)))
    for i in range(len(starts)):
        (alone,) = run([i])
        assert [h.tokens for h in together[i]] == [h.tokens for h in alone]
        assert [h.score for h in together[i]] == pytest.approx([h.score for h in alone])
