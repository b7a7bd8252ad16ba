"""generate/task.py: the hidden state carried across windows, its resets, its checkpointing,
and validation that reads the text as the runtime's scoring does."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from lm_helpers import TEXT, lm_config, make_tokenizer, random_language_model

from generate.task import LanguageModelTask
from generate.torch_generator import TorchGenerator


def make_task(**overrides) -> LanguageModelTask:
    config = lm_config(**overrides)
    tokenizer = make_tokenizer("char")
    model = random_language_model(config, tokenizer, scale=0.3)
    return LanguageModelTask(
        config, model, tokenizer, TEXT[:1500], TEXT[1500:], log=lambda *_: None
    )


def test_the_state_carries_from_window_to_window():
    task = make_task(state_reset=0.0)
    task.model.eval()  # no dropout: the comparison is exact
    windows = task.epoch_batches(1)
    task.start_epoch(1)
    assert task.state is None
    with torch.no_grad():
        for batch in windows[:3]:
            task.train_step(batch)
        inputs = np.concatenate([w[0] for w in windows[:3]], axis=1)
        _, state = task.model(torch.from_numpy(inputs))
    for carried, whole in zip(task.state, state):
        assert torch.allclose(carried, whole, atol=1e-6)
        assert not carried.requires_grad  # detached: backpropagation stops at the window
    task.start_epoch(2)
    assert task.state is None


def test_rows_marked_for_reset_restart_from_zeros():
    task = make_task()
    task.model.eval()
    inputs, targets, _ = task.epoch_batches(1)[0]
    with torch.no_grad():
        task.train_step((inputs, targets, np.zeros(4, dtype=bool)))
        before = [s.clone() for s in task.state]
        reset = np.array([False, True, False, True])
        task.train_step((inputs, targets, reset))
        after = task.state
        _, fresh_state = task.model(torch.from_numpy(np.ascontiguousarray(inputs)))
        _, carried_state = task.model(torch.from_numpy(np.ascontiguousarray(inputs)), tuple(before))
    for a, fresh_s, carried_s in zip(after, fresh_state, carried_state):
        assert torch.allclose(a[:, [1, 3]], fresh_s[:, [1, 3]], atol=1e-6)
        assert torch.allclose(a[:, [0, 2]], carried_s[:, [0, 2]], atol=1e-6)


def test_the_state_round_trips_through_the_checkpoint():
    task = make_task()
    assert task.state_dict() == {"state": None}
    task.train_step(task.epoch_batches(1)[0])
    saved = task.state_dict()
    other = make_task()
    other.load_state_dict(saved)
    assert all(torch.equal(a, b) for a, b in zip(task.state, other.state))


def test_validation_reads_the_text_as_the_runtime_scores_it():
    task = make_task(eval_streams=3)
    task.model.eval()
    with torch.no_grad():
        results = task.evaluate()
    nll, tokens = TorchGenerator(task.model, task.tokenizer).score(TEXT[1500:], streams=3)
    assert tokens == len(TEXT[1500:])
    assert results["nll"] == pytest.approx(nll / tokens, rel=1e-5)
    assert results["bits_per_char"] == pytest.approx(nll / tokens / np.log(2), rel=1e-5)
    assert set(results) == {"bits_per_char", "perplexity_per_word", "nll", "ppl"}


def test_extras_describe_the_vocabulary():
    task = make_task()
    extras = task.checkpoint_extras()
    assert extras["level"] == "char" and extras["unknown_trained"] is False
    assert extras["newline_id"] == task.tokenizer.encode("\n")[0]
    assert extras["tokenizer"] == task.tokenizer.state()
