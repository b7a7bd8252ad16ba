"""torch -> ONNX for language models: one step graph that reads a whole chunk of tokens.

Called by :func:`export.exporter.export_checkpoint` for checkpoints of kind ``language_model``
(``python -m export --checkpoint RUN/best.pt --out RUN/bundle``). The graph takes ``tokens``
[rows, time], ``origin`` [rows] and the state tensors [prev_rows, layers, hidden]; it gathers the
state rows by ``origin`` (so the search can drop and reorder rows without a copy on the host),
reads the chunk, and returns ``log_probs`` [rows, vocab] after the last token and the new state
[rows, layers, hidden]. Rows, time and previous rows are dynamic axes: a prompt is read in one
call, and sampling feeds chunks of one token.
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
from generate.model import RNNLanguageModel, model_from_checkpoint
from seq2seq.core.recurrent import batch_first, layers_first, state_names

STEP_GRAPH = "lm_step.onnx"


class LanguageModelStepGraph(nn.Module):
    """tokens [rows, time], origin [rows], state [prev_rows, layers, hidden] ->
    log_probs [rows, vocab] after the last token, new state [rows, layers, hidden]."""

    def __init__(self, model: RNNLanguageModel):
        super().__init__()
        self.model = model

    def forward(self, tokens, origin, *state):
        state = layers_first([s.index_select(0, origin) for s in state])
        features, new_state = self.model(tokens, state)
        return (self.model.log_probs(features[:, -1]), *batch_first(new_state))


def export_language_model(
    payload: dict, out_dir: str, opset: int = DEFAULT_OPSET, quantize: str | None = None
) -> dict:
    """Write a language-model bundle from a loaded checkpoint ``payload``."""
    config, model, tokenizer = model_from_checkpoint(payload, "checkpoint")
    extras = payload["extras"]
    names = state_names(config.cell)
    state_shape = [config.layers, config.hidden_size]

    def write(directory: str) -> None:
        # time 3 and two rows gathered from three: no size of the example can be taken for a
        # constant of the graph
        tokens = torch.tensor([[4, 5, 6], [6, 5, 4]]) % tokenizer.vocab_size
        origin = torch.tensor([2, 0])
        state = [torch.randn(3, *state_shape) for _ in names]
        path = os.path.join(directory, STEP_GRAPH)
        onnx_export(
            LanguageModelStepGraph(model),
            (tokens, origin, *state),
            path,
            ["tokens", "origin", *names],
            ["log_probs", *[f"new_{n}" for n in names]],
            {
                "tokens": {0: "rows", 1: "time"},
                "origin": {0: "rows"},
                **{n: {0: "prev_rows"} for n in names},
                "log_probs": {0: "rows"},
                **{f"new_{n}": {0: "rows"} for n in names},
            },
            opset,
        )
        maybe_quantize([path], quantize)
        spec = tokenizer.save(directory, "text")
        manifest = manifest_base(
            "language_model",
            payload,
            model={
                "cell": config.cell,
                "embedding_size": config.embedding_size,
                "hidden_size": config.hidden_size,
                "layers": config.layers,
                "tie_embeddings": config.tie_embeddings,
                "vocab_size": tokenizer.vocab_size,
            },
            graphs={
                "step": STEP_GRAPH,
                "state_names": names,
                "state_shapes": [state_shape for _ in names],
                "opset": opset,
                "quantized": quantize,
            },
            tokenizers={"text": spec},
        )
        manifest.update(
            level=extras["level"],
            newline_id=extras["newline_id"],
            unknown_trained=extras["unknown_trained"],
        )
        write_manifest(directory, manifest)

    return write_bundle(out_dir, write)
