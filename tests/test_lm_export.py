"""export/language_model.py: the language-model step graph against the torch model.

ONNX and torch agree on log-probabilities and states over several steps (max abs diff <= 1e-4)
for every cell; one graph serves any batch size and chunk length; reading a chunk equals reading
it token by token; the state is gathered by ``origin`` inside the graph."""

from __future__ import annotations

import json
import os

import numpy as np
import onnxruntime as ort
import pytest
import torch
from lm_helpers import export_random_lm

from export.runtime.bundle import read_manifest

TOLERANCE = 1e-4


@pytest.fixture(scope="module", params=["lstm", "gru", "rnn"])
def exported(request, tmp_path_factory):
    return export_random_lm(tmp_path_factory.mktemp(f"lm-{request.param}"), cell=request.param)


def session_of(bundle: str) -> ort.InferenceSession:
    manifest = read_manifest(bundle)
    return ort.InferenceSession(
        os.path.join(bundle, manifest["graphs"]["step"]), providers=["CPUExecutionProvider"]
    )


def run_graph(session, tokens: np.ndarray, origin: np.ndarray, state: list[np.ndarray]):
    names = [i.name for i in session.get_inputs()][2:]
    outputs = session.run(None, {"tokens": tokens, "origin": origin, **dict(zip(names, state))})
    return outputs[0], outputs[1:]


def run_torch(model, tokens: np.ndarray, origin: np.ndarray, state: list[np.ndarray]):
    """The same computation in torch; state arrays are batch-first [rows, layers, hidden]."""
    with torch.no_grad():
        gathered = tuple(torch.from_numpy(s[origin]).transpose(0, 1).contiguous() for s in state)
        features, new_state = model(torch.from_numpy(tokens), gathered)
        log_probs = model.log_probs(features[:, -1])
    return log_probs.numpy(), [s.transpose(0, 1).numpy() for s in new_state]


def zero_state(exported, rows: int) -> list[np.ndarray]:
    config = exported.config
    count = 2 if config.cell == "lstm" else 1
    return [np.zeros((rows, config.layers, config.hidden_size), np.float32)] * count


def random_tokens(exported, rows: int, time: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(4, exported.tokenizer.vocab_size, (rows, time)).astype(np.int64)


def assert_close(a, b):
    assert a.shape == b.shape
    assert np.abs(a - b).max() <= TOLERANCE


def test_onnx_matches_torch_over_several_steps(exported):
    session = session_of(exported.bundle)
    tokens = random_tokens(exported, 3, 5)
    origin = np.arange(3, dtype=np.int64)
    onnx_state = torch_state = zero_state(exported, 3)
    onnx_lp, onnx_state = run_graph(session, tokens, origin, onnx_state)
    torch_lp, torch_state = run_torch(exported.model, tokens, origin, torch_state)
    assert_close(onnx_lp, torch_lp)
    # then one token per step, with rows dropped, duplicated and reordered through origin
    for step, origin in enumerate([[2, 0, 0, 1], [3, 1], [1, 0, 1], [0, 1, 2]]):
        origin = np.asarray(origin, dtype=np.int64)
        tokens = random_tokens(exported, len(origin), 1, seed=step + 1)
        onnx_lp, onnx_state = run_graph(session, tokens, origin, onnx_state)
        torch_lp, torch_state = run_torch(exported.model, tokens, origin, torch_state)
        assert_close(onnx_lp, torch_lp)
        for a, b in zip(onnx_state, torch_state):
            assert_close(a, b)


def test_a_chunk_equals_token_by_token(exported):
    session = session_of(exported.bundle)
    tokens = random_tokens(exported, 2, 9, seed=3)
    origin = np.arange(2, dtype=np.int64)
    whole_lp, whole_state = run_graph(session, tokens, origin, zero_state(exported, 2))
    state = zero_state(exported, 2)
    for t in range(tokens.shape[1]):
        log_probs, state = run_graph(session, tokens[:, t : t + 1], origin, state)
    assert_close(log_probs, whole_lp)
    for a, b in zip(state, whole_state):
        assert_close(a, b)


@pytest.mark.parametrize("rows", [1, 3, 17])
def test_one_graph_for_every_batch_size(exported, rows):
    session = session_of(exported.bundle)
    for time in (1, 4):
        tokens = random_tokens(exported, rows, time, seed=rows)
        origin = np.arange(rows, dtype=np.int64)
        state = [
            np.random.default_rng(rows).normal(size=s.shape).astype(np.float32)
            for s in zero_state(exported, rows)
        ]
        onnx_lp, onnx_state = run_graph(session, tokens, origin, state)
        torch_lp, torch_state = run_torch(exported.model, tokens, origin, state)
        assert onnx_lp.shape == (rows, exported.tokenizer.vocab_size)
        assert_close(onnx_lp, torch_lp)
        for a, b in zip(onnx_state, torch_state):
            assert_close(a, b)


def test_rows_in_a_batch_do_not_affect_each_other(exported):
    session = session_of(exported.bundle)
    tokens = random_tokens(exported, 5, 6, seed=9)
    origin = np.arange(5, dtype=np.int64)
    batch_lp, _ = run_graph(session, tokens, origin, zero_state(exported, 5))
    for row in range(5):
        alone, _ = run_graph(session, tokens[row : row + 1], origin[:1], zero_state(exported, 1))
        assert_close(alone[0], batch_lp[row])


def test_manifest_describes_the_graph(exported):
    manifest = read_manifest(exported.bundle)
    config = exported.config
    assert manifest["kind"] == "language_model"
    names = ["h", "c"] if config.cell == "lstm" else ["h"]
    assert manifest["graphs"]["state_names"] == names
    assert manifest["graphs"]["state_shapes"] == [[config.layers, config.hidden_size]] * len(names)
    assert manifest["newline_id"] == exported.tokenizer.encode("\n")[0]
    assert manifest["level"] == "char" and manifest["unknown_trained"] is False
    spec = manifest["tokenizers"]["text"]
    with open(os.path.join(exported.bundle, spec["file"]), encoding="utf-8") as f:
        assert json.load(f)["tokens"] == exported.tokenizer.tokens
    session = session_of(exported.bundle)
    assert [i.name for i in session.get_inputs()] == ["tokens", "origin", *names]
    assert [o.name for o in session.get_outputs()] == ["log_probs", *[f"new_{n}" for n in names]]


def test_tied_embeddings_with_a_projection_export(tmp_path):
    exported = export_random_lm(tmp_path, tie_embeddings=True, embedding_size=8, hidden_size=16)
    assert exported.model.projection is not None
    session = session_of(exported.bundle)
    tokens = random_tokens(exported, 2, 3)
    origin = np.arange(2, dtype=np.int64)
    state = zero_state(exported, 2)
    assert_close(
        run_graph(session, tokens, origin, state)[0],
        run_torch(exported.model, tokens, origin, state)[0],
    )


@pytest.mark.parametrize("level", ["word", "subword"])
def test_word_and_subword_bundles_carry_their_vocabulary(tmp_path, level):
    from export.runtime import Generator

    exported = export_random_lm(tmp_path, level=level)
    generator = Generator.load(exported.bundle)
    assert generator.tokenizer.kind == exported.tokenizer.kind
    assert generator.tokenizer.vocab_size == exported.tokenizer.vocab_size
    assert generator.newline_id is not None
    text = "the king hath come\nsweet lady\n"
    assert generator.tokenizer.encode(text) == exported.tokenizer.encode(text)


def test_int8_quantized_bundle_runs(tmp_path):
    exported = export_random_lm(tmp_path, quantize="int8", hidden_size=32, embedding_size=32)
    assert read_manifest(exported.bundle)["graphs"]["quantized"] == "int8"
    session = session_of(exported.bundle)
    tokens = random_tokens(exported, 3, 4)
    log_probs, _ = run_graph(session, tokens, np.arange(3, dtype=np.int64), zero_state(exported, 3))
    assert log_probs.shape == (3, exported.tokenizer.vocab_size)
    assert np.allclose(np.exp(log_probs).sum(1), 1.0, atol=1e-4)
