"""torch -> ONNX: write a bundle from a checkpoint (``python -m export``). Imports torch.

Uses the TorchScript-based exporter (``dynamo=False``): the dynamo exporter graph-breaks on
RNNs. Every batch and length axis is dynamic, recurrent states included, and the initial
states are graph inputs, so nothing about the batch is frozen into the graph.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import warnings

import torch
from torch import nn

from export import __version__
from export.bundle import write_manifest
from export.tokenizers import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    UNK_ID,
    SentencePieceSubsetTokenizer,
    tokenizer_from_state,
)

DEFAULT_OPSET = 17


def _batch_first(state: tuple) -> list[torch.Tensor]:
    """RNN state tensors [layers, rows, hidden] -> [rows, layers, hidden]; feed stays."""
    return [s.transpose(0, 1) if s.dim() == 3 else s for s in state]


def _layers_first(state) -> tuple:
    return tuple(s.transpose(0, 1).contiguous() if s.dim() == 3 else s for s in state)


def state_names_for(cell: str, input_feeding: bool = False) -> list[str]:
    names = ["h", "c"] if cell == "lstm" else ["h"]
    return names + (["feed"] if input_feeding else [])


class EncoderGraph(nn.Module):
    """src [batch, src_len], src_lengths [batch] -> memory, keys, mask, initial state."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, src, src_lengths):
        encoded = self.model.encode(src, src_lengths)
        return (encoded.memory, encoded.keys, encoded.mask, *_batch_first(encoded.state))


class DecoderStepGraph(nn.Module):
    """tokens [rows], origin [rows], memory/keys/mask [rows, ...], state [prev_rows, ...]
    -> log_probs [rows, vocab], new state [rows, ...]. The state is gathered by ``origin``
    inside the graph, so it can stay on the device between steps."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, tokens, origin, memory, keys, mask, *state):
        state = _layers_first([s.index_select(0, origin) for s in state])
        log_probs, new_state = self.model.decode_step(tokens, state, memory, keys, mask)
        return (log_probs, *_batch_first(new_state))


def _onnx_export(module, args, path, input_names, output_names, dynamic_axes, opset) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
        torch.onnx.export(
            module,
            args,
            path,
            dynamo=False,
            opset_version=opset,
            input_names=input_names,
            output_names=output_names,
            dynamic_axes=dynamic_axes,
            do_constant_folding=True,
        )
    import onnx

    onnx.checker.check_model(path, full_check=True)


def _unshare_initializers(model) -> None:
    """Give every node its own copy of an initializer that several nodes read.

    Tied embeddings make the embedding Gather and the output Gemm share one weight; the
    quantizer rewrites a weight for the node it quantizes, which would corrupt the other
    reader (the Gather would return vocabulary-sized rows)."""
    import onnx

    initializers = {i.name: i for i in model.graph.initializer}
    seen: set[str] = set()
    for node in model.graph.node:
        for position, name in enumerate(node.input):
            if name not in initializers:
                continue
            if name in seen:
                copy = onnx.TensorProto()
                copy.CopyFrom(initializers[name])
                copy.name = f"{name}__{node.name or node.op_type}_{position}"
                model.graph.initializer.append(copy)
                node.input[position] = copy.name
            else:
                seen.add(name)


@contextlib.contextmanager
def _quiet_root_logger():
    """onnxruntime's quantizer advises on the root logger ("consider pre-processing"), once per
    graph; the advice is for other model families, so keep it off the user's terminal."""
    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def quantize_int8(path: str) -> None:
    """Dynamic int8 quantization of the weights of MatMul/Gemm/LSTM/GRU ops, in place."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(path)
    _unshare_initializers(model)
    unshared = path + ".unshared.tmp"
    quantized = path + ".int8.tmp"
    onnx.save(model, unshared)
    try:
        with warnings.catch_warnings(), _quiet_root_logger():
            warnings.simplefilter("ignore")
            quantize_dynamic(unshared, quantized, weight_type=QuantType.QInt8)
        os.replace(quantized, path)
    finally:
        for leftover in (unshared, quantized):
            if os.path.exists(leftover):
                os.remove(leftover)


def export_translation(
    payload: dict, out_dir: str, opset: int = DEFAULT_OPSET, quantize: str | None = None
) -> dict:
    """Write a translation bundle from a loaded checkpoint ``payload``."""
    from seq2seq.config import TranslationConfig, config_from_dict
    from seq2seq.model import build_model

    config = config_from_dict(TranslationConfig, payload["config"], "checkpoint")
    extras = payload["extras"]
    source = tokenizer_from_state(extras["source_tokenizer"])
    target = tokenizer_from_state(extras["target_tokenizer"])
    model = build_model(config, source.vocab_size, target.vocab_size)
    model.load_state_dict(payload["model"])
    model.eval()
    state_names = state_names_for(config.cell, config.input_feeding)

    def write(directory: str) -> None:
        src = torch.tensor([[5, 6, 7, EOS_ID], [8, 9, EOS_ID, PAD_ID]])
        src_lengths = torch.tensor([4, 3])
        with torch.no_grad():
            encoded = EncoderGraph(model)(src, src_lengths)
        _onnx_export(
            EncoderGraph(model),
            (src, src_lengths),
            os.path.join(directory, "encoder.onnx"),
            ["src", "src_lengths"],
            ["memory", "keys", "mask", *state_names],
            {
                "src": {0: "batch", 1: "src_len"},
                "src_lengths": {0: "batch"},
                "memory": {0: "batch", 1: "src_len"},
                "keys": {0: "batch", 1: "src_len"},
                "mask": {0: "batch", 1: "src_len"},
                **{n: {0: "batch"} for n in state_names},
            },
            opset,
        )
        origin = torch.tensor([0, 0, 1])
        memory, keys, mask = (t.index_select(0, origin) for t in encoded[:3])
        tokens = torch.tensor([BOS_ID, 5, 6])
        step_inputs = ["tokens", "origin", "memory", "keys", "mask", *state_names]
        step_outputs = ["log_probs", *[f"new_{n}" for n in state_names]]
        rows = {0: "rows"}
        _onnx_export(
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
                **{n: {0: "prev_rows"} for n in state_names},
                "log_probs": rows,
                **{f"new_{n}": rows for n in state_names},
            },
            opset,
        )
        if quantize == "int8":
            quantize_int8(os.path.join(directory, "encoder.onnx"))
            quantize_int8(os.path.join(directory, "decoder_step.onnx"))
        source_spec, target_spec = _save_tokenizers(source, target, directory)
        write_manifest(
            directory,
            {
                "kind": "translation",
                "toolkit_version": __version__,
                "special_ids": {"pad": PAD_ID, "unk": UNK_ID, "bos": BOS_ID, "eos": EOS_ID},
                "model": {
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
                "graphs": {
                    "encoder": "encoder.onnx",
                    "decoder_step": "decoder_step.onnx",
                    "state_names": state_names,
                    "opset": opset,
                    "quantized": quantize,
                },
                "tokenizers": {"source": source_spec, "target": target_spec},
                "max_source_length": int(extras["max_source_length"]),
                "training": payload.get("progress", {}),
                "config": payload["config"],
            },
        )

    return _write_bundle(out_dir, write)


def _save_tokenizers(source, target, directory: str) -> tuple[dict, dict]:
    """Write the tokenizer files; a joint sentencepiece model is written once, whether the
    target side uses all of it or a subset of its pieces."""
    if source.state() == target.state():
        spec = source.save(directory, "vocab")
        return spec, spec
    if isinstance(target, SentencePieceSubsetTokenizer) and target.base.state() == source.state():
        source_spec = source.save(directory, "vocab")
        return source_spec, target.save(directory, "target", model_file=source_spec["file"])
    return source.save(directory, "source"), target.save(directory, "target")


def _write_bundle(out_dir: str, write) -> dict:
    """Build the bundle in a temporary directory next to ``out_dir`` and move it into place,
    so a failed export never leaves a half-written bundle behind."""
    from export.bundle import read_manifest

    out_dir = os.path.abspath(out_dir)
    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".bundle-", dir=parent)
    try:
        write(staging)
        if os.path.isdir(out_dir):
            shutil.rmtree(out_dir)
        os.replace(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return read_manifest(out_dir)


def export_checkpoint(
    checkpoint: str, out_dir: str, opset: int = DEFAULT_OPSET, quantize: str | None = None
) -> dict:
    """Export any checkpoint of this toolkit (translation or language model) to a bundle."""
    from seq2seq.checkpoint import load_checkpoint

    if quantize not in (None, "int8"):
        raise ValueError(f"quantize must be int8 (or absent), got {quantize!r}")
    payload = load_checkpoint(checkpoint)
    if payload["kind"] == "translation":
        return export_translation(payload, out_dir, opset, quantize)
    if payload["kind"] == "language_model":
        from generate.export_lm import export_language_model

        return export_language_model(payload, out_dir, opset, quantize)
    raise ValueError(f"{checkpoint}: unknown model kind {payload['kind']!r}")
