"""torch -> ONNX for translation: an encoder graph and a decoder-step graph.

``encoder.onnx``: src [batch, src_len], src_lengths [batch] -> memory, keys, mask and the
decoder's initial state. ``decoder_step.onnx``: tokens [rows], origin [rows], memory/keys/mask
[rows, ...], state [prev_rows, ...] -> log_probs [rows, vocab] and the new state; the state is
gathered by ``origin`` inside the graph, so it can stay on the device between steps. See
docs/bundle-format.md.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from export.graphs import (
    DEFAULT_OPSET,
    manifest_base,
    maybe_quantize,
    onnx_export,
    write_bundle,
)
from export.runtime.bundle import write_manifest
from export.runtime.tokenizers import BOS_ID, EOS_ID, PAD_ID, SentencePieceSubsetTokenizer
from seq2seq.core.recurrent import batch_first, layers_first, state_names
from seq2seq.model import model_from_checkpoint


class EncoderGraph(nn.Module):
    """src [batch, src_len], src_lengths [batch] -> memory, keys, mask, initial state."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, src, src_lengths):
        encoded = self.model.encode(src, src_lengths)
        return (encoded.memory, encoded.keys, encoded.mask, *batch_first(encoded.state))


class DecoderStepGraph(nn.Module):
    """tokens [rows], origin [rows], memory/keys/mask [rows, ...], state [prev_rows, ...]
    -> log_probs [rows, vocab], new state [rows, ...]. The state is gathered by ``origin``
    inside the graph, so it can stay on the device between steps."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, tokens, origin, memory, keys, mask, *state):
        state = layers_first([s.index_select(0, origin) for s in state])
        log_probs, new_state = self.model.decode_step(tokens, state, memory, keys, mask)
        return (log_probs, *batch_first(new_state))


def export_translation(
    payload: dict, out_dir: str, opset: int = DEFAULT_OPSET, quantize: str | None = None
) -> dict:
    """Write a translation bundle from a loaded checkpoint ``payload``."""
    config, model, source, target = model_from_checkpoint(payload, "checkpoint")
    extras = payload["extras"]
    names = state_names(config.cell, config.input_feeding)

    def write(directory: str) -> None:
        src = torch.tensor([[5, 6, 7, EOS_ID], [8, 9, EOS_ID, PAD_ID]])
        src_lengths = torch.tensor([4, 3])
        with torch.no_grad():
            encoded = EncoderGraph(model)(src, src_lengths)
        onnx_export(
            EncoderGraph(model),
            (src, src_lengths),
            os.path.join(directory, "encoder.onnx"),
            ["src", "src_lengths"],
            ["memory", "keys", "mask", *names],
            {
                "src": {0: "batch", 1: "src_len"},
                "src_lengths": {0: "batch"},
                "memory": {0: "batch", 1: "src_len"},
                "keys": {0: "batch", 1: "src_len"},
                "mask": {0: "batch", 1: "src_len"},
                **{n: {0: "batch"} for n in names},
            },
            opset,
        )
        origin = torch.tensor([0, 0, 1])
        memory, keys, mask = (t.index_select(0, origin) for t in encoded[:3])
        tokens = torch.tensor([BOS_ID, 5, 6])
        step_inputs = ["tokens", "origin", "memory", "keys", "mask", *names]
        step_outputs = ["log_probs", *[f"new_{n}" for n in names]]
        rows = {0: "rows"}
        onnx_export(
            DecoderStepGraph(model),
            (tokens, origin, memory, keys, mask, *encoded[3:]),
            os.path.join(directory, "decoder_step.onnx"),
            step_inputs,
            step_outputs,
            {
                "tokens": rows,
                "origin": rows,
                "memory": {0: "rows", 1: "src_len"},
                "keys": {0: "rows", 1: "src_len"},
                "mask": {0: "rows", 1: "src_len"},
                **{n: {0: "prev_rows"} for n in names},
                "log_probs": rows,
                **{f"new_{n}": rows for n in names},
            },
            opset,
        )
        maybe_quantize(
            [os.path.join(directory, "encoder.onnx"), os.path.join(directory, "decoder_step.onnx")],
            quantize,
        )
        source_spec, target_spec = save_tokenizers(source, target, directory)
        manifest = manifest_base(
            "translation",
            payload,
            model={
                "cell": config.cell,
                "embedding_size": config.embedding_size,
                "hidden_size": config.hidden_size,
                "encoder_layers": config.encoder_layers,
                "decoder_layers": config.decoder_layers,
                "bidirectional": config.bidirectional,
                "attention": config.attention,
                "input_feeding": config.input_feeding,
                "source_vocab_size": source.vocab_size,
                "target_vocab_size": target.vocab_size,
            },
            graphs={
                "encoder": "encoder.onnx",
                "decoder_step": "decoder_step.onnx",
                "state_names": names,
                "opset": opset,
                "quantized": quantize,
            },
            tokenizers={"source": source_spec, "target": target_spec},
        )
        manifest["max_source_length"] = int(extras["max_source_length"])
        write_manifest(directory, manifest)

    return write_bundle(out_dir, write)


def save_tokenizers(source, target, directory: str) -> tuple[dict, dict]:
    """Write the tokenizer files; a joint sentencepiece model is written once, whether the
    target side uses all of it or a subset of its pieces."""
    if source.state() == target.state():
        spec = source.save(directory, "vocab")
        return spec, spec
    if isinstance(target, SentencePieceSubsetTokenizer) and target.base.state() == source.state():
        source_spec = source.save(directory, "vocab")
        return source_spec, target.save(directory, "target", model_file=source_spec["file"])
    return source.save(directory, "source"), target.save(directory, "target")
