"""Decoding search, written once: greedy, sampling and beam search over a step function.

Both the ONNX runtime and the torch model (validation during training, ``--checkpoint``
decoding) drive these functions, so the two paths cannot drift apart. Everything here is numpy.

A *step function* advances every live row by one token::

    step(tokens: int64 [rows], origin: int64 [rows]) -> log_probs: float32 [rows, vocab]

``origin[i]`` is the row of the previous call (or, on the first call, the encoded sentence or
prompt) whose recurrent state row ``i`` continues. Search uses it to expand a sentence into beams,
to reorder beams, and to drop rows that have finished; the step function gathers its state (and,
when the set of sentences changes, its encoder memory) accordingly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from export.runtime.seeds import RowSeed, row_generators, uniform_draws

StepFunction = Callable[[np.ndarray, np.ndarray], np.ndarray]
NEG_INF = -np.inf


@dataclass
class Hypothesis:
    """One decoded output: ``tokens`` excludes the start token and the end-of-sequence token."""

    tokens: list[int]
    score: float  # sum of the log-probabilities of the tokens (and of the EOS, if it ended)
    normalized_score: float  # score divided by the length penalty; what beam search ranks by
    finished: bool = True  # False when it stopped at max_length without choosing EOS
    extras: dict = field(default_factory=dict)


def length_normalize(score: float, length: int, length_penalty: float) -> float:
    """``score / length ** length_penalty`` (0 keeps raw log-probability sums)."""
    if length_penalty == 0:
        return score
    return score / (max(length, 1) ** length_penalty)


def _as_limits(value, batch_size: int) -> np.ndarray:
    limits = np.broadcast_to(np.asarray(value, dtype=np.int64), (batch_size,))
    return np.ascontiguousarray(limits)


def apply_constraints(
    log_probs: np.ndarray,
    step_index: int,
    min_length: np.ndarray,
    max_length: np.ndarray,
    eos_id: int | None,
    history: np.ndarray | None = None,
    no_repeat_ngram: int = 0,
) -> np.ndarray:
    """Mask ``log_probs`` [rows, vocab] in place: no EOS before ``min_length`` [rows] tokens,
    only EOS once ``max_length`` [rows] tokens are out, and no n-gram of size
    ``no_repeat_ngram`` twice in a row's ``history`` [rows, step_index]."""
    if eos_id is not None:
        too_short = step_index < min_length
        if too_short.any():
            log_probs[too_short, eos_id] = NEG_INF
        at_limit = step_index >= max_length
        if at_limit.any():
            eos_scores = log_probs[at_limit, eos_id].copy()
            log_probs[at_limit] = NEG_INF
            # A row forced to stop keeps EOS's own probability as its final score term.
            log_probs[at_limit, eos_id] = eos_scores
    if no_repeat_ngram > 0 and history is not None and step_index >= no_repeat_ngram - 1:
        _block_repeated_ngrams(log_probs, history, no_repeat_ngram)
    return log_probs


def _block_repeated_ngrams(log_probs: np.ndarray, history: np.ndarray, n: int) -> None:
    """Forbid any token that would complete an n-gram already present in the row's history."""
    length = history.shape[1]
    if n == 1:
        for row in range(history.shape[0]):
            log_probs[row, history[row]] = NEG_INF
        return
    prefix_len = n - 1
    for row in range(history.shape[0]):
        tokens = history[row]
        current = tuple(tokens[length - prefix_len :])
        banned = [
            tokens[i + prefix_len]
            for i in range(length - prefix_len)
            if tuple(tokens[i : i + prefix_len]) == current
        ]
        if banned:
            log_probs[row, banned] = NEG_INF


def penalize_repetition(
    log_probs: np.ndarray, seen: Sequence[np.ndarray], penalty: float
) -> np.ndarray:
    """Make already-seen tokens less likely: their log-probabilities [rows, vocab] are multiplied
    by ``penalty`` (> 1), in place. ``seen[row]`` lists the token ids of that row's context."""
    if penalty == 1.0:
        return log_probs
    for row, tokens in enumerate(seen):
        if len(tokens):
            log_probs[row, tokens] *= penalty
    return log_probs


def choose_tokens(
    log_probs: np.ndarray,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    rng: np.random.Generator | Sequence[np.random.Generator] | None = None,
) -> np.ndarray:
    """Pick one token per row of ``log_probs`` [rows, vocab]: the argmax when ``temperature`` is
    0, else a sample from the distribution sharpened by ``temperature`` and cut to the ``top_k``
    most likely tokens and to the smallest set whose probability reaches ``top_p``. ``rng`` is
    one Generator for all rows or one per row (each row then draws from its own stream).
    Returns int64 [rows]."""
    if temperature <= 0:
        return log_probs.argmax(axis=1).astype(np.int64)
    rng = rng if rng is not None else np.random.default_rng()
    scores = log_probs.astype(np.float64) / temperature
    vocab = scores.shape[1]
    if 0 < top_k < vocab:
        kth = np.partition(scores, vocab - top_k, axis=1)[:, vocab - top_k : vocab - top_k + 1]
        scores[scores < kth] = NEG_INF
    scores -= scores.max(axis=1, keepdims=True)
    probs = np.exp(scores)
    probs /= probs.sum(axis=1, keepdims=True)
    if top_p < 1.0:
        order = np.argsort(-probs, axis=1, kind="stable")
        sorted_probs = np.take_along_axis(probs, order, axis=1)
        before = np.cumsum(sorted_probs, axis=1) - sorted_probs
        sorted_probs[before >= top_p] = 0.0  # the first token always survives (before == 0)
        probs = np.zeros_like(probs)
        np.put_along_axis(probs, order, sorted_probs, axis=1)
        probs /= probs.sum(axis=1, keepdims=True)
    cumulative = np.cumsum(probs, axis=1)
    draws = uniform_draws(rng, probs.shape[0])[:, None] * cumulative[:, -1:]
    chosen = (cumulative <= draws).sum(axis=1)
    # Guard against rounding at the top end picking a zero-probability token.
    chosen = np.minimum(chosen, vocab - 1)
    zero = probs[np.arange(len(chosen)), chosen] == 0
    if zero.any():
        chosen[zero] = probs[zero].argmax(axis=1)
    return chosen.astype(np.int64)


def iter_sample(
    step: StepFunction,
    start_tokens: np.ndarray,
    max_length,
    eos_id: int | None,
    min_length=0,
    temperature: float = 0.0,
    top_k: int = 0,
    top_p: float = 1.0,
    seed: int | None | Sequence[RowSeed] = None,
    no_repeat_ngram: int = 0,
    repetition_penalty: float = 1.0,
    context: Sequence[Sequence[int]] | None = None,
    cancelled: Callable[[], Collection[int]] | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Greedy search (``temperature`` 0) or sampling, one step at a time.

    ``start_tokens`` [batch] is fed first (BOS for translation; a prompt's last token for a
    language model). ``max_length``/``min_length`` count generated tokens, per row or for all.
    Yields ``(sentence_ids [live], tokens [live], log_probs [live])`` after every step: which
    sentences are still going, the token each chose and its log-probability. A sentence stops
    when it chooses ``eos_id`` (that token is yielded too) or reaches ``max_length``.
    ``context`` lists tokens per sentence (e.g. the prompt) that ``repetition_penalty`` also
    counts as seen.

    Each sentence samples from its own stream (:mod:`export.runtime.seeds`): ``seed`` is the
    call's seed (sentence ``i`` draws from ``[seed, i]``, sentence 0 from ``seed``) or one seed
    per sentence, so its text does not depend on the batch. ``cancelled``, if given, is asked
    before every step for sentences to drop (their reader went away)."""
    batch_size = len(start_tokens)
    max_length = _as_limits(max_length, batch_size)
    min_length = _as_limits(min_length, batch_size)
    generators = row_generators(seed, batch_size) if temperature > 0 else None
    sentence_ids = np.arange(batch_size)
    tokens = np.asarray(start_tokens, dtype=np.int64)
    origin = np.arange(batch_size, dtype=np.int64)
    # the tokens chosen so far, kept only where a constraint reads them
    track_history = no_repeat_ngram > 0 or repetition_penalty != 1.0
    history = np.zeros((batch_size, 0), dtype=np.int64)
    seen = None
    if repetition_penalty != 1.0:
        contexts = context if context is not None else [[]] * batch_size
        seen = [np.unique(np.asarray(c, dtype=np.int64)) for c in contexts]
    # Per step, the length constraints can only bite before the longest min_length or from the
    # shortest live max_length on; between the two (most steps) they are skipped.
    longest_min = int(min_length.max()) if batch_size else 0
    shortest_max = int(max_length.min()) if batch_size else 0
    for step_index in range(int(max_length.max()) + 1):
        gone = list(cancelled()) if cancelled is not None else []
        if eos_id is None or gone:  # with no EOS to force, rows at their limit just leave
            keep = step_index < max_length[sentence_ids] if eos_id is None else sentence_ids >= 0
            keep = np.flatnonzero(keep & ~np.isin(sentence_ids, gone) if gone else keep)
            if len(keep) < len(sentence_ids):
                sentence_ids, tokens, origin = sentence_ids[keep], tokens[keep], origin[keep]
                history = history[keep]
                seen = None if seen is None else [seen[i] for i in keep]
            if len(sentence_ids) == 0:
                return
        log_probs = step(tokens, origin)
        if step_index < longest_min or step_index >= shortest_max or no_repeat_ngram > 0:
            apply_constraints(
                log_probs,
                step_index,
                min_length[sentence_ids],
                max_length[sentence_ids],
                eos_id,
                history,
                no_repeat_ngram,
            )
        if seen is not None:
            penalize_repetition(
                log_probs, [np.union1d(s, h) for s, h in zip(seen, history)], repetition_penalty
            )
        rngs = None if generators is None else [generators[i] for i in sentence_ids.tolist()]
        chosen = choose_tokens(log_probs, temperature, top_k, top_p, rngs)
        rows = np.arange(len(chosen), dtype=np.int64)
        yield sentence_ids, chosen, log_probs[rows, chosen]
        if track_history:
            history = np.concatenate([history, chosen[:, None]], axis=1)
        if eos_id is not None:
            keep = np.flatnonzero(chosen != eos_id)
            if len(keep) < len(chosen):
                sentence_ids, chosen, rows = sentence_ids[keep], chosen[keep], rows[keep]
                if track_history:
                    history = history[keep]
                seen = None if seen is None else [seen[i] for i in keep]
                if len(sentence_ids):
                    shortest_max = int(max_length[sentence_ids].min())
        origin, tokens = rows, chosen
        if len(sentence_ids) == 0:
            return


def sample_search(
    step: StepFunction,
    start_tokens: np.ndarray,
    max_length,
    eos_id: int | None,
    min_length=0,
    temperature: float = 0.0,
    top_k: int = 0,
    top_p: float = 1.0,
    seed: int | None | Sequence[RowSeed] = None,
    no_repeat_ngram: int = 0,
    repetition_penalty: float = 1.0,
    context: Sequence[Sequence[int]] | None = None,
) -> list[Hypothesis]:
    """Run :func:`iter_sample` to the end; one :class:`Hypothesis` per start token."""
    batch_size = len(start_tokens)
    outputs: list[list[int]] = [[] for _ in range(batch_size)]
    scores = np.zeros(batch_size)
    finished = np.zeros(batch_size, dtype=bool)
    for sentence_ids, tokens, token_scores in iter_sample(
        step,
        start_tokens,
        max_length,
        eos_id,
        min_length,
        temperature,
        top_k,
        top_p,
        seed,
        no_repeat_ngram,
        repetition_penalty,
        context,
    ):
        scores[sentence_ids] += token_scores
        for sentence, token in zip(sentence_ids.tolist(), tokens.tolist()):
            if token == eos_id:
                finished[sentence] = True
            else:
                outputs[sentence].append(token)
    return [
        Hypothesis(tokens, float(score), float(score), bool(done))
        for tokens, score, done in zip(outputs, scores, finished)
    ]


def greedy_search(
    step: StepFunction,
    start_tokens: np.ndarray,
    max_length,
    eos_id: int | None,
    min_length=0,
    no_repeat_ngram: int = 0,
) -> list[Hypothesis]:
    """The most likely token at every step (``sample_search`` at temperature 0)."""
    return sample_search(
        step,
        start_tokens,
        max_length,
        eos_id,
        min_length,
        temperature=0.0,
        no_repeat_ngram=no_repeat_ngram,
    )


def _best_candidates(
    log_probs: np.ndarray, scores: np.ndarray, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """The ``width`` best extensions of each sentence, best first.

    ``log_probs``: [sentences * k, vocab] of the next token; ``scores``: [sentences, k] of the
    beams so far. Returns flat candidate ids ``beam * vocab + token`` and their total scores,
    both [sentences, width]. The global best ``width`` of a sentence are among the best
    ``width`` tokens of each of its beams (a beam adds one score to all its tokens), so each
    beam row is cut to those first: a partition of float32 rows instead of a float64 sum and
    partition over every beam x vocabulary entry (5x faster at 32 sentences x beam 5)."""
    sentences, k = scores.shape
    vocab = log_probs.shape[1]
    rows = np.arange(sentences * k)[:, None]
    if width < vocab:
        tokens = np.argpartition(log_probs, vocab - width, axis=1)[:, vocab - width :]
    else:
        tokens = np.broadcast_to(np.arange(vocab), log_probs.shape)
    per_beam = tokens.shape[1]
    # plain fancy indexing: np.take_along_axis costs ~20 us of Python per call at batch 1
    totals = (log_probs[rows, tokens] + scores.reshape(-1, 1)).reshape(sentences, k * per_beam)
    ids = (tokens + rows % k * vocab).reshape(sentences, k * per_beam)
    order = np.argsort(-totals, axis=1, kind="stable")[:, :width]
    chosen = (np.arange(sentences)[:, None], order)
    return ids[chosen], totals[chosen]


def beam_search(
    step: StepFunction,
    start_tokens: np.ndarray,
    max_length,
    eos_id: int,
    beam_size: int = 5,
    min_length=0,
    length_penalty: float = 1.0,
    n_best: int = 1,
    no_repeat_ngram: int = 0,
) -> list[list[Hypothesis]]:
    """Beam search over a batch: all sentences x beams go through one step call per step.

    Hypotheses are ranked by ``score / length ** length_penalty`` (length counts the EOS).
    A hypothesis enters the finished list when its EOS ranks among the ``beam_size`` best
    candidates of its sentence; a sentence stops once it has ``n_best`` finished hypotheses and
    no live one can still beat them (exact for ``length_penalty`` 0, the usual heuristic
    otherwise), or at ``max_length``, where every live hypothesis is made to end.
    Returns, per sentence, the ``n_best`` best hypotheses, best first.
    """
    if not 1 <= n_best <= beam_size:
        raise ValueError(f"n_best must be between 1 and the beam size {beam_size}, got {n_best}")
    batch_size = len(start_tokens)
    max_length = _as_limits(max_length, batch_size)
    min_length = _as_limits(min_length, batch_size)
    k = beam_size
    sentence_ids = np.arange(batch_size)
    tokens = np.repeat(np.asarray(start_tokens, dtype=np.int64), k)
    origin = np.repeat(np.arange(batch_size, dtype=np.int64), k)
    # Only the first beam of each sentence is live at the start, so beams do not duplicate.
    scores = np.full((batch_size, k), NEG_INF)
    scores[:, 0] = 0.0
    history = np.zeros((batch_size * k, 0), dtype=np.int64)
    finished: list[list[Hypothesis]] = [[] for _ in range(batch_size)]

    for step_index in range(int(max_length.max()) + 1):
        log_probs = step(tokens, origin)
        vocab = log_probs.shape[1]
        row_sentences = np.repeat(sentence_ids, k)
        apply_constraints(
            log_probs,
            step_index,
            min_length[row_sentences],
            max_length[row_sentences],
            eos_id,
            history,
            no_repeat_ngram,
        )
        width = min(2 * k, k * vocab)
        top, top_scores = _best_candidates(log_probs, scores, width)

        next_origin, next_tokens, next_scores, next_sentences = [], [], [], []
        length = step_index + 1  # tokens of a hypothesis that ends now, EOS included
        for position, sentence in enumerate(sentence_ids.tolist()):
            alive: list[tuple[float, int, int]] = []
            done = finished[sentence]
            for rank in range(width):
                score = float(top_scores[position, rank])
                if score == NEG_INF or len(alive) == k:
                    break
                beam, token = divmod(int(top[position, rank]), vocab)
                row = position * k + beam
                if token == eos_id:
                    if rank < k:
                        done.append(
                            Hypothesis(
                                history[row].tolist(),
                                score,
                                length_normalize(score, length, length_penalty),
                            )
                        )
                else:
                    alive.append((score, row, token))
            done.sort(key=lambda h: -h.normalized_score)
            del done[n_best:]
            if alive and len(done) == n_best:
                # Could the best live hypothesis still beat the worst kept one?
                best = alive[0][0]
                bound = max(
                    length_normalize(best, length + 1, length_penalty),
                    length_normalize(best, int(max_length[sentence]) + 1, length_penalty)
                    if length_penalty < 0
                    else NEG_INF,
                )
                if bound <= done[-1].normalized_score:
                    alive = []
            if not alive:
                continue
            while len(alive) < k:  # pad with dead beams so every sentence keeps k rows
                alive.append((NEG_INF, alive[0][1], eos_id))
            for score, row, token in alive:
                next_scores.append(score)
                next_origin.append(row)
                next_tokens.append(token)
            next_sentences.append(sentence)

        if not next_sentences:
            break
        sentence_ids = np.asarray(next_sentences)
        origin = np.asarray(next_origin, dtype=np.int64)
        tokens = np.asarray(next_tokens, dtype=np.int64)
        scores = np.asarray(next_scores).reshape(len(sentence_ids), k)
        history = np.concatenate([history[origin], tokens[:, None]], axis=1)

    for sentence in range(batch_size):
        if not finished[sentence]:  # cannot happen with a finite max_length; kept for safety
            finished[sentence].append(Hypothesis([], -math.inf, -math.inf, finished=False))
    return finished
