"""seq2seq/model.py and its parts (encoders, decoders, attention, recurrent, loss): padding never
reaches real positions, whole-sequence decoding equals step-by-step decoding, and the fused loss
equals torch's cross-entropy in value and gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from seq2seq.attention import LuongAttention
from seq2seq.core.loss import output_loss
from seq2seq.core.recurrent import locked_dropout, reverse_padded
from seq2seq.model import Seq2SeqModel

VOCAB = 23
PAD, BOS, EOS = 0, 2, 3


def make_model(cell="lstm", seed=0, **overrides) -> Seq2SeqModel:
    torch.manual_seed(seed)
    settings = dict(
        cell=cell,
        embedding_size=12,
        hidden_size=16,
        encoder_layers=2,
        decoder_layers=2,
        bidirectional=True,
        attention="general",
        dropout=0.0,
        embedding_dropout=0.0,
        tie_embeddings=False,
    )
    settings.update(overrides)
    return Seq2SeqModel(VOCAB, VOCAB + 4, **settings).eval()


def sentence(length: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.randint(4, VOCAB, (length,), generator=generator)
    return torch.cat([tokens, torch.tensor([EOS])])


def padded(sentences: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(s) for s in sentences])
    batch = torch.full((len(sentences), int(lengths.max())), PAD, dtype=torch.long)
    for row, s in enumerate(sentences):
        batch[row, : len(s)] = s
    return batch, lengths


@pytest.mark.parametrize("bidirectional", [True, False], ids=["bidirectional", "forward"])
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_padding_never_changes_the_encoding_of_real_positions(cell, bidirectional):
    model = make_model(cell, bidirectional=bidirectional)
    target = sentence(6, seed=1)
    others = [sentence(11, seed=2), sentence(2, seed=3), sentence(8, seed=4)]
    batch, lengths = padded([others[0], target, *others[1:]])
    with torch.no_grad():
        alone = model.encode(target.unsqueeze(0), torch.tensor([len(target)]))
        together = model.encode(batch, lengths)
    n = len(target)
    torch.testing.assert_close(together.memory[1, :n], alone.memory[0], atol=1e-6, rtol=0)
    torch.testing.assert_close(together.keys[1, :n], alone.keys[0], atol=1e-6, rtol=0)
    assert together.mask[1].tolist() == [True] * n + [False] * (batch.size(1) - n)
    for batched_state, single_state in zip(together.state, alone.state):
        torch.testing.assert_close(batched_state[:, 1], single_state[:, 0], atol=1e-6, rtol=0)
    # and the decoder's output for that sentence does not change either
    tgt_in = torch.tensor([[BOS, 5, 6, 7]])
    with torch.no_grad():
        single = model.decode(tgt_in, alone)
        batched = model.decode(tgt_in.expand(len(lengths), -1), together)
    torch.testing.assert_close(batched[1], single[0], atol=1e-6, rtol=0)


def test_reverse_padded_reverses_within_each_length():
    x = torch.arange(10.0).view(2, 5, 1)
    lengths = torch.tensor([3, 5])
    reversed_x = reverse_padded(x, lengths)
    assert reversed_x[:, :, 0].tolist() == [[2, 1, 0, 3, 4], [9, 8, 7, 6, 5]]
    assert torch.equal(reverse_padded(reversed_x, lengths), x)


@pytest.mark.parametrize("input_feeding", [False, True], ids=["plain", "input-feeding"])
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_whole_target_decode_equals_step_by_step(cell, input_feeding):
    model = make_model(cell, input_feeding=input_feeding, decoder_layers=2)
    src, lengths = padded([sentence(7, seed=5), sentence(3, seed=6)])
    tgt_in = torch.tensor([[BOS, 5, 9, 4, 12, 8], [BOS, 7, 7, 20, 0, 0]])
    with torch.no_grad():
        encoded = model.encode(src, lengths)
        whole = torch.log_softmax(model.output(model.decode(tgt_in, encoded)), dim=-1)
        state = encoded.state
        for t in range(tgt_in.size(1)):
            log_probs, state = model.decode_step(
                tgt_in[:, t], state, encoded.memory, encoded.keys, encoded.mask
            )
            torch.testing.assert_close(log_probs, whole[:, t], atol=1e-5, rtol=0)
    assert len(state) == (2 if cell == "lstm" else 1) + input_feeding
    assert state[0].shape == (2, 2, 16)


@pytest.mark.parametrize("attention", ["dot", "general", "concat"])
def test_every_attention_kind_runs_and_masks_padding(attention):
    model = make_model(attention=attention, embedding_size=16, tie_embeddings=True)
    src, lengths = padded([sentence(7, seed=7), sentence(2, seed=8)])
    tgt_in = torch.tensor([[BOS, 5, 9], [BOS, 6, 4]])
    with torch.no_grad():
        encoded = model.encode(src, lengths)
        out = model.decode(tgt_in, encoded)
        query = torch.randn(2, 3, 16)
        context, weights = model.decoder.attention(
            query, encoded.keys, encoded.memory, encoded.mask
        )
    assert out.shape == (2, 3, 16) and torch.isfinite(out).all()
    assert context.shape == (2, 3, 16)
    torch.testing.assert_close(weights.sum(2), torch.ones(2, 3))
    assert (weights[1, :, 3:] == 0).all()  # the padded source positions of sentence 2
    assert model.output.weight is model.tgt_embedding.weight


def test_configuration_errors_are_explained():
    with pytest.raises(ValueError, match="dot attention needs"):
        LuongAttention("dot", 16, 32)
    with pytest.raises(ValueError, match="unknown attention 'additive'"):
        LuongAttention("additive", 16, 16)
    with pytest.raises(ValueError, match="tie_embeddings needs"):
        make_model(embedding_size=12, tie_embeddings=True)
    with pytest.raises(ValueError, match="even hidden_size"):
        make_model(hidden_size=15)
    with pytest.raises(ValueError, match="unknown cell 'lstmx'"):
        make_model(cell="lstmx")


def test_padding_embeddings_are_zero():
    model = make_model()
    assert model.src_embedding.weight[PAD].abs().sum() == 0
    assert model.tgt_embedding.weight[PAD].abs().sum() == 0


def test_locked_dropout_uses_one_mask_per_sequence():
    torch.manual_seed(0)
    x = torch.ones(4, 9, 32)
    dropped = locked_dropout(x, 0.5, training=True)
    assert torch.equal(dropped, dropped[:, :1].expand_as(dropped))  # same at every step
    assert set(dropped.unique().tolist()) == {0.0, 2.0}
    assert locked_dropout(x, 0.5, training=False) is x


# ----------------------------------------------------------------------------- loss


def reference_loss(hidden, weight, bias, target, smoothing):
    logits = F.linear(hidden, weight, bias)
    loss = F.cross_entropy(logits, target, label_smoothing=smoothing, reduction="sum")
    nll = F.cross_entropy(logits, target, reduction="sum")
    return loss, nll


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "plain"])
@pytest.mark.parametrize("with_bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
def test_output_loss_equals_cross_entropy_in_value_and_gradients(smoothing, with_bias, fused):
    torch.manual_seed(0)
    tokens, size, vocab = 70, 24, 50
    hidden = torch.randn(tokens, size, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(vocab, size, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(vocab, dtype=torch.float64, requires_grad=True) if with_bias else None
    target = torch.randint(0, vocab, (tokens,))
    inputs = [hidden, weight] + ([bias] if with_bias else [])

    # chunks of 16 rows: several chunks and a ragged last one
    loss, nll = output_loss(hidden, weight, bias, target, smoothing, fused=fused, chunk_size=16)
    grads = torch.autograd.grad(loss * 0.7, inputs)
    expected_loss, expected_nll = reference_loss(hidden, weight, bias, target, smoothing)
    expected_grads = torch.autograd.grad(expected_loss * 0.7, inputs)

    torch.testing.assert_close(loss.double(), expected_loss, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(nll.double(), expected_nll, rtol=1e-6, atol=1e-6)
    assert not nll.requires_grad
    # the plain path computes the softmax in float32 (it also serves bf16/fp16 autocast)
    tolerance = dict(rtol=1e-6, atol=1e-8) if fused else dict(rtol=1e-4, atol=1e-5)
    for grad, expected in zip(grads, expected_grads):
        torch.testing.assert_close(grad, expected, **tolerance)


def test_fused_loss_in_float32_is_as_accurate_as_torch_even_when_exp_overflows():
    torch.manual_seed(1)
    hidden = torch.randn(600, 32)
    weight = torch.randn(40, 32) * 0.3
    bias = torch.randn(40)
    target = torch.randint(0, 40, (600,))

    def loss_and_grads(dtype, scale, fused):
        h, w, b = (t.to(dtype).clone().requires_grad_() for t in (hidden * scale, weight, bias))
        if fused is None:
            loss, _ = reference_loss(h, w, b, target, 0.1)
        else:
            loss, _ = output_loss(h, w, b, target, 0.1, fused=fused)
        loss.backward()
        return [t.double() for t in (loss.detach(), h.grad, w.grad, b.grad)]

    for scale in (1.0, 60.0):  # 60: exp overflows float32 unless the row maximum is shifted
        exact = loss_and_grads(torch.float64, scale, None)
        torch32 = loss_and_grads(torch.float32, scale, None)
        fused = loss_and_grads(torch.float32, scale, True)
        assert all(torch.isfinite(t).all() for t in fused)
        for ours, theirs, reference in zip(fused, torch32, exact):
            torch_error = (theirs - reference).abs().max()
            error = (ours - reference).abs().max()
            assert error <= 2 * torch_error + 1e-6 * reference.abs().max()


def test_output_loss_defaults_to_fused_on_cpu_float32():
    hidden = torch.randn(5, 8, requires_grad=True)
    weight = torch.randn(11, 8, requires_grad=True)
    loss, _ = output_loss(hidden, weight, None, torch.tensor([1, 2, 3, 4, 5]))
    assert type(loss.grad_fn).__name__ == "_FusedLinearCrossEntropyBackward"
