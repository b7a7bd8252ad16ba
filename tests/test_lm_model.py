"""generate/model.py: shapes, explicit state, chunk == step by step, tying, dropout."""

from __future__ import annotations

import pytest
import torch
from lm_helpers import lm_config

from generate.model import RNNLanguageModel, build_model

VOCAB = 23


def model_for(cell: str, **kwargs) -> RNNLanguageModel:
    torch.manual_seed(0)
    settings = dict(embedding_size=8, hidden_size=12, num_layers=2, dropout=0.0)
    settings.update(kwargs)
    return RNNLanguageModel(VOCAB, cell=cell, **settings).eval()


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_shapes_and_state(cell):
    model = model_for(cell)
    tokens = torch.randint(4, VOCAB, (3, 7))
    features, state = model(tokens)
    assert features.shape == (3, 7, model.output_size)
    assert len(state) == (2 if cell == "lstm" else 1) == model.state_size
    assert all(s.shape == (2, 3, 12) for s in state)
    log_probs = model.log_probs(features)
    assert log_probs.shape == (3, 7, VOCAB)
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(3, 7), atol=1e-5)
    zero = model.initial_state(3)
    assert all(s.shape == (2, 3, 12) and not s.any() for s in zero)
    assert torch.equal(model(tokens, zero)[0], features)  # None means the zero state


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_reading_a_chunk_equals_reading_token_by_token(cell):
    model = model_for(cell)
    tokens = torch.randint(4, VOCAB, (2, 9))
    whole, whole_state = model(tokens)
    state, steps = None, []
    for t in range(tokens.size(1)):
        features, state = model(tokens[:, t : t + 1], state)
        steps.append(features)
    assert torch.allclose(torch.cat(steps, 1), whole, atol=1e-6)
    for a, b in zip(state, whole_state):
        assert torch.allclose(a, b, atol=1e-6)


def test_state_carries_context():
    """Windows read one after another with the state carried equal one long read."""
    model = model_for("lstm")
    tokens = torch.randint(4, VOCAB, (2, 10))
    first, state = model(tokens[:, :6])
    second, _ = model(tokens[:, 6:], state)
    whole, _ = model(tokens)
    assert torch.allclose(torch.cat([first, second], 1), whole, atol=1e-6)
    fresh, _ = model(tokens[:, 6:])
    assert not torch.allclose(fresh, second, atol=1e-3)


def test_tied_embeddings_share_the_matrix_with_a_projection_when_sizes_differ():
    same = model_for("lstm", embedding_size=12, tie_embeddings=True)
    assert same.output.weight is same.embedding.weight and same.projection is None
    differ = model_for("lstm", embedding_size=8, tie_embeddings=True)
    assert differ.output.weight is differ.embedding.weight
    assert differ.projection is not None and differ.output_size == 8
    assert differ(torch.randint(4, VOCAB, (1, 3)))[0].shape == (1, 3, 8)
    untied = model_for("lstm", tie_embeddings=False)
    assert untied.output.weight is not untied.embedding.weight and untied.output_size == 12
    # tied parameters are counted (and optimised) once
    assert len(list(differ.parameters())) == len(list(untied.parameters())) + 1  # + projection


def test_tied_embedding_keeps_the_embedding_scale():
    """Tying after the init keeps N(0, 1/dim), not Xavier over [vocab, dim]."""
    torch.manual_seed(0)
    model = RNNLanguageModel(5000, embedding_size=64, hidden_size=64, tie_embeddings=True)
    assert model.embedding.weight.std().item() == pytest.approx(64**-0.5, rel=0.05)


def test_dropout_only_in_training_and_locked_over_time():
    model = model_for("lstm", dropout=0.5, embedding_dropout=0.5)
    tokens = torch.randint(4, VOCAB, (2, 6))
    evaluated = model(tokens)[0]
    assert torch.equal(evaluated, model(tokens)[0])
    model.train()
    torch.manual_seed(1)
    dropped = model(tokens)[0]
    assert not torch.allclose(dropped, evaluated)
    # the output mask is the same at every step: a unit dropped once is dropped throughout
    zero_units = dropped == 0
    assert zero_units.any()
    assert torch.equal(zero_units.any(1), zero_units.all(1))


def test_build_model_from_config():
    config = lm_config(cell="gru", layers=3, hidden_size=10, embedding_size=10, tie_embeddings=True)
    model = build_model(config, VOCAB)
    assert model.cell == "gru" and model.num_layers == 3
    assert model.output.weight is model.embedding.weight
    with pytest.raises(ValueError, match="unknown cell"):
        RNNLanguageModel(VOCAB, cell="transformer")
