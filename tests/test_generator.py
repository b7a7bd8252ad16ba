"""export.runtime.Generator: sampling, streaming, stop strings, prompts, scoring, bad bundles;
and generate.torch_generator.TorchGenerator, the same code over the torch model."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from lm_helpers import TEXT, export_random_lm, make_tokenizer

from export.runtime.bundle import BundleError
from export.runtime.generator import Continuation, Generator
from generate.torch_generator import TorchGenerator

PROMPTS = ["the king", "sweet lady hath", "o", "good night, my lord!\nthou"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return export_random_lm(tmp_path_factory.mktemp("gen"), hidden_size=24, embedding_size=12)


@pytest.fixture(scope="module")
def generator(exported) -> Generator:
    return Generator.load(exported.bundle)


@pytest.fixture(scope="module")
def torch_generator(exported) -> TorchGenerator:
    return TorchGenerator(exported.model, exported.tokenizer)


# ----------------------------------------------------------------------------- sampling


def test_the_same_seed_gives_the_same_text(generator):
    first = generator.generate(PROMPTS, max_tokens=40, temperature=1.0, seed=7)
    assert first == generator.generate(PROMPTS, max_tokens=40, temperature=1.0, seed=7)
    assert "".join(generator.stream(PROMPTS[0], max_tokens=40, seed=7)) == "".join(
        generator.stream(PROMPTS[0], max_tokens=40, seed=7)
    )
    assert first != generator.generate(PROMPTS, max_tokens=40, temperature=1.0, seed=8)
    assert all(len(text) == 40 for text in first)  # char level: one character per token


def test_different_seeds_give_different_texts(generator):
    texts = {generator.generate("the", max_tokens=30, seed=seed)[0] for seed in range(5)}
    assert len(texts) == 5


def test_greedy_equals_the_torch_model(generator, torch_generator, exported):
    onnx = generator.generate(PROMPTS, max_tokens=80, temperature=0)
    assert onnx == torch_generator.generate(PROMPTS, max_tokens=80, temperature=0)
    # and an argmax loop written directly over the torch model
    import torch

    model, tokenizer = exported.model, exported.tokenizer
    for prompt, text in zip(PROMPTS, onnx):
        ids = tokenizer.encode(prompt)
        with torch.no_grad():
            features, state = model(torch.tensor([ids]))
            out = []
            for _ in range(80):
                scores = model.log_probs(features[:, -1])[0]
                scores[:4] = -float("inf")  # specials are never written
                out.append(int(scores.argmax()))
                features, state = model(torch.tensor([[out[-1]]]), state)
        assert text == tokenizer.decode(out)


def test_torch_and_onnx_sample_the_same_text(generator, torch_generator):
    """Same seed, same distributions (up to float noise): the same draws pick the same tokens."""
    assert generator.generate(PROMPTS, max_tokens=25, seed=3) == torch_generator.generate(
        PROMPTS, max_tokens=25, seed=3
    )


def test_a_batch_gives_each_prompt_what_it_gets_alone(generator):
    batch = generator.generate(PROMPTS, max_tokens=25, temperature=0)
    assert batch == [generator.generate(p, max_tokens=25, temperature=0)[0] for p in PROMPTS]


def test_stream_pieces_concatenate_to_generate(generator):
    for prompt in PROMPTS:
        for stop in (None, ["e"], ["th", "ng"]):
            pieces = list(generator.stream(prompt, max_tokens=50, seed=11, stop=stop))
            assert (
                "".join(pieces)
                == generator.generate([prompt], max_tokens=50, seed=11, stop=stop)[0]
            )
            assert all(pieces)
    assert len(list(generator.stream("the", max_tokens=20, seed=1))) > 5  # really streams


def test_stop_strings_end_the_text_before_them(generator):
    full = generator.generate("the", max_tokens=200, seed=5)[0]
    stop = full[20:22]
    cut = generator.generate("the", max_tokens=200, seed=5, stop=stop)[0]
    assert cut == full[: full.index(stop)]
    assert stop not in cut
    assert generator.generate("the", max_tokens=200, seed=5, stop=[stop, full[5]])[0] == full[:5]
    # the stream stops as soon as a stop string appears
    assert "".join(generator.stream("the", max_tokens=200, seed=5, stop=stop)) == cut


def test_top_k_one_is_greedy_and_top_p_keeps_the_best(generator):
    greedy = generator.generate(PROMPTS, max_tokens=20, temperature=0)
    assert generator.generate(PROMPTS, max_tokens=20, top_k=1, seed=4) == greedy
    assert generator.generate(PROMPTS, max_tokens=20, top_p=1e-6, seed=4) == greedy


def test_repetition_penalty_avoids_seen_tokens(generator, exported):
    prompt = "the"
    text = generator.generate(prompt, max_tokens=8, temperature=0, repetition_penalty=1e9)[0]
    assert len(set(text)) == len(text) == 8
    assert not set(text) & set(prompt)


def test_special_tokens_are_never_written(generator):
    text = "".join(generator.generate(PROMPTS, max_tokens=200, temperature=3.0, seed=0))
    assert "\u2047" not in text  # what <unk> would decode to
    assert set(text) <= set(TEXT)


def test_zero_tokens_and_bad_settings(generator):
    assert generator.generate(PROMPTS, max_tokens=0) == [""] * len(PROMPTS)
    assert generator.generate([], max_tokens=5) == []
    for settings, message in [
        ({"top_p": 0.0}, "top_p must be in"),
        ({"temperature": -1.0}, "temperature must be at least 0"),
        ({"top_k": -2}, "top_k must be at least 0"),
        ({"max_tokens": -1}, "max_tokens must be an integer >= 0"),
        ({"repetition_penalty": 0.0}, "repetition_penalty must be"),
    ]:
        with pytest.raises(ValueError, match=message):
            list(generator.stream("the", **settings))


# ----------------------------------------------------------------------------- prompts


def test_an_empty_prompt_starts_at_the_beginning_of_a_line(generator, exported):
    text = generator.generate("", max_tokens=30, temperature=0)[0]
    assert len(text) == 30
    assert text == generator.generate("\n", max_tokens=30, temperature=0)[0]


def test_a_prompt_of_unknown_characters_is_refused_clearly(generator):
    with pytest.raises(ValueError, match=r"vocabulary lacks: '#', '1', '@' \(char vocabulary"):
        generator.generate("the @king #1", max_tokens=5)
    with pytest.raises(ValueError, match="vocabulary lacks: '\u4e2d'"):
        list(generator.stream("\u4e2d", max_tokens=5))
    with pytest.raises(TypeError, match="a prompt is a str"):
        generator.generate([b"bytes"], max_tokens=5)


def test_word_level_continues_with_a_space_and_reads_unknown_words_as_unk(tmp_path):
    exported = export_random_lm(tmp_path, level="word", unknown_trained=True)
    generator = Generator.load(exported.bundle)
    text = generator.generate("the king", max_tokens=6, temperature=0)[0]
    assert text.startswith((" ", "\n"))  # words are separated from the prompt
    assert len(text.split()) <= 6
    # the model learned <unk> in training, so an unknown word reads as <unk> rather than failing
    assert generator.generate("the zebra", max_tokens=3, temperature=0)[0]


@pytest.mark.parametrize("level", ["char", "word", "subword"])
def test_a_continuation_is_spaced_from_its_prompt(tmp_path, level):
    """Tokens are decoded after the prompt's last token, so the space between prompt and
    continuation (a separate thing in word and sentencepiece vocabularies) comes out."""
    tokenizer = make_tokenizer(level, tmp_path)
    ids = tokenizer.encode("the king hath come\nsweet lady")
    prompt = tokenizer.encode("the king")
    assert ids[: len(prompt)] == prompt
    continuation = Continuation(tokenizer, prompt[-1:], stops=[])
    text = "".join(continuation.add(t) for t in ids[len(prompt) :]) + continuation.finish()
    assert text == " hath come\nsweet lady"
    # a long text, decoded piece by piece (earlier tokens are settled), as decoded at once
    ids = tokenizer.encode(TEXT)
    continuation = Continuation(tokenizer, ids[:1], stops=[])
    text = "".join(continuation.add(t) for t in ids[1:]) + continuation.finish()
    assert len(ids) > 4 * Continuation.SETTLE_AFTER
    assert tokenizer.decode(ids[:1]) + text == tokenizer.decode(ids) == TEXT


# ----------------------------------------------------------------------------- scoring


def test_score_matches_the_torch_model(generator, torch_generator, exported):
    for streams in (1, 4):
        nll, tokens = generator.score(TEXT, streams=streams)
        torch_nll, torch_tokens = torch_generator.score(TEXT, streams=streams)
        assert tokens == torch_tokens == len(TEXT)  # every character, the first one included
        assert nll == pytest.approx(torch_nll, rel=1e-5)
    # one stream is exactly the sum of each token's log-probability given all before it
    import torch

    ids = [generator.newline_id, *exported.tokenizer.encode(TEXT)]
    with torch.no_grad():
        features, _ = exported.model(torch.tensor([ids[:-1]]))
        log_probs = exported.model.log_probs(features)[0]
    expected = -float(log_probs[torch.arange(len(ids) - 1), torch.tensor(ids[1:])].sum())
    assert generator.score(TEXT, streams=1)[0] == pytest.approx(expected, rel=1e-5)


# ----------------------------------------------------------------------------- bad bundles


def test_a_translation_bundle_is_refused_clearly(translation_bundle):
    with pytest.raises(
        BundleError,
        match="holds a translation model, not a language_model model; load it with Translator.load",
    ):
        Generator.load(translation_bundle)


def test_a_fake_manifest_is_refused_clearly(tmp_path, exported):
    fake = tmp_path / "fake"
    shutil.copytree(exported.bundle, fake)
    manifest_path = fake / "model.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    del manifest["graphs"]["state_shapes"]
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(BundleError, match="model.json lacks graphs.state_shapes"):
        Generator.load(str(fake))
    manifest_path.write_text(json.dumps({"format": "something else"}), encoding="utf-8")
    with pytest.raises(BundleError, match="not a rnn-seq-bundle manifest"):
        Generator.load(str(fake))
    with pytest.raises(BundleError, match="not a bundle"):
        Generator.load(str(tmp_path))


def test_a_damaged_graph_is_refused_clearly(tmp_path, exported):
    damaged = tmp_path / "damaged"
    shutil.copytree(exported.bundle, damaged)
    with open(damaged / "lm_step.onnx", "r+b") as f:
        f.seek(100)
        f.write(b"\x00\x01\x02")
    with pytest.raises(BundleError, match="checksum mismatch"):
        Generator.load(str(damaged))


def test_threads_and_io_binding_give_the_same_text(exported, generator):
    other = Generator.load(exported.bundle, threads=1, io_binding=True)
    assert other.generate(PROMPTS, max_tokens=15, seed=1) == generator.generate(
        PROMPTS, max_tokens=15, seed=1
    )


def test_state_shapes_come_from_the_manifest(generator, exported):
    state = generator.initial_state(3)
    assert [s.shape for s in state] == [
        (3, exported.config.layers, exported.config.hidden_size)
    ] * 2
    assert all(s.dtype == np.float32 and not s.any() for s in state)
    assert os.path.basename(generator.directory) == "bundle"
