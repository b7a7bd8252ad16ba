"""torch -> ONNX helpers shared by every family's exporter (imports torch and onnx).

The TorchScript-based exporter (``dynamo=False``) is used: the dynamo exporter graph-breaks on
RNNs. Every batch and length axis is dynamic, recurrent states included, and the initial states
are graph inputs, so nothing about the batch is frozen into a graph. A bundle is written into
a temporary directory and moved into place (:func:`write_bundle`), so a failed export never
leaves half a bundle.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import warnings

import torch

from export import __version__
from export.runtime.bundle import read_manifest
from export.runtime.tokenizers import BOS_ID, EOS_ID, PAD_ID, UNK_ID

DEFAULT_OPSET = 17
QUANTIZE_CHOICES = ("int8",)


def onnx_export(
    module, args, path: str, input_names, output_names, dynamic_axes: dict, opset: int
) -> None:
    """Export ``module`` called on ``args`` to ``path`` and check the graph (full check)."""
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


def maybe_quantize(paths: list[str], quantize: str | None) -> None:
    """Apply the ``--quantize`` choice (None or "int8") to the graphs at ``paths``."""
    if quantize is None:
        return
    if quantize not in QUANTIZE_CHOICES:
        raise ValueError(f"quantize must be int8 (or absent), got {quantize!r}")
    for path in paths:
        quantize_int8(path)


def manifest_base(kind: str, payload: dict, model: dict, graphs: dict, tokenizers: dict) -> dict:
    """The ``model.json`` entries every kind shares (the family adds its own): kind, toolkit
    version, special ids, model sizes, graphs, tokenizer specs, training progress and the full
    config of the checkpoint ``payload``."""
    return {
        "kind": kind,
        "toolkit_version": __version__,
        "special_ids": {"pad": PAD_ID, "unk": UNK_ID, "bos": BOS_ID, "eos": EOS_ID},
        "model": model,
        "graphs": graphs,
        "tokenizers": tokenizers,
        "training": payload.get("progress", {}),
        "config": payload["config"],
    }


def write_bundle(out_dir: str, write) -> dict:
    """Build the bundle in a temporary directory next to ``out_dir`` and move it into place,
    so a failed export never leaves a half-written bundle behind. ``write(directory)`` writes
    the files and the manifest; returns the manifest, read back and checked."""
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
