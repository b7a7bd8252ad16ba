"""torch -> ONNX for text classifiers: one graph, token ids + lengths -> class probabilities.

Called by :func:`export.exporter.export_checkpoint` for checkpoints of kind ``classification``.
The graph takes ``ids`` [batch, time] int64 (padded with any id) and ``lengths`` [batch] int64
and returns ``probabilities`` [batch, classes] float32; batch and time are dynamic axes. The
bundle holds the graph, the tokenizer, the label names (``labels``, in the order of the
probabilities' columns), ``max_length`` and ``lowercase`` (how texts are encoded).
"""

from __future__ import annotations

import os

import torch
from torch import nn

from classify.model import RNNClassifier, model_from_checkpoint
from export.graphs import DEFAULT_OPSET, manifest_base, maybe_quantize, onnx_export, write_bundle
from export.runtime.bundle import write_manifest

CLASSIFIER_GRAPH = "classifier.onnx"


class ClassifierGraph(nn.Module):
    """ids [batch, time], lengths [batch] -> probabilities [batch, classes]."""

    def __init__(self, model: RNNClassifier):
        super().__init__()
        self.model = model

    def forward(self, ids, lengths):
        return torch.softmax(self.model(ids, lengths).float(), dim=1)


def export_classifier(
    payload: dict, out_dir: str, opset: int = DEFAULT_OPSET, quantize: str | None = None
) -> dict:
    """Write a classification bundle from a loaded checkpoint ``payload``."""
    config, model, tokenizer, labels = model_from_checkpoint(payload, "checkpoint")

    def write(directory: str) -> None:
        # two texts of different lengths, so that no size of the example becomes a constant
        ids = torch.tensor([[4, 5, 6, 7], [7, 6, 0, 0]]) % tokenizer.vocab_size
        lengths = torch.tensor([4, 2])
        path = os.path.join(directory, CLASSIFIER_GRAPH)
        onnx_export(
            ClassifierGraph(model),
            (ids, lengths),
            path,
            ["ids", "lengths"],
            ["probabilities"],
            {
                "ids": {0: "batch", 1: "time"},
                "lengths": {0: "batch"},
                "probabilities": {0: "batch"},
            },
            opset,
        )
        maybe_quantize([path], quantize)
        spec = tokenizer.save(directory, "text")
        manifest = manifest_base(
            "classification",
            payload,
            model={
                "cell": config.cell,
                "embedding_size": config.embedding_size,
                "hidden_size": config.hidden_size,
                "layers": config.layers,
                "bidirectional": config.bidirectional,
                "pooling": config.pooling,
                "vocab_size": tokenizer.vocab_size,
                "classes": len(labels),
            },
            graphs={"classifier": CLASSIFIER_GRAPH, "opset": opset, "quantized": quantize},
            tokenizers={"text": spec},
        )
        manifest.update(
            labels=labels,
            level=config.level,
            max_length=config.max_length,
            lowercase=config.lowercase,
        )
        write_manifest(directory, manifest)

    return write_bundle(out_dir, write)
