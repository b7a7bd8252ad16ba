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

from export import __version__
from export.bundle import write_manifest
from export.exporter import (
    DEFAULT_OPSET,
    _batch_first,
    _layers_first,
    _onnx_export,
    _write_bundle,
    quantize_int8,
    state_names_for,
)
from export.tokenizers import BOS_ID, EOS_ID, PAD_ID, UNK_ID, tokenizer_from_state
from generate.model import RNNLanguageModel

STEP_GRAPH = "lm_step.onnx"


class LanguageModelStepGraph(nn.Module):
    """tokens [rows, time], origin [rows], state [prev_rows, layers, hidden] ->
    log_probs [rows, vocab] after the last token, new state [rows, layers, hidden]."""

    def __init__(self, model: RNNLanguageModel):
        super().__init__()
        self.model = model

    def forward(self, tokens, origin, *state):
        state = _layers_first([s.index_select(0, origin) for s in state])
        features, new_state = self.model(tokens, state)
        return (self.model.log_probs(features[:, -1]), *_batch_first(new_state))


def load_language_model(payload: dict) -> tuple:
    """The config, tokenizer and model (eval mode, on CPU) of a language-model checkpoint."""
    from generate.config import LanguageModelConfig
    from generate.model import build_model
    from seq2seq.config import config_from_dict

    config = config_from_dict(LanguageModelConfig, payload["config"], "checkpoint")
    tokenizer = tokenizer_from_state(payload["extras"]["tokenizer"])
    model = build_model(config, tokenizer.vocab_size)
    model.load_state_dict(payload["model"])
    return config, tokenizer, model.eval()


def export_language_model(
    payload: dict, out_dir: str, opset: int = DEFAULT_OPSET, quantize: str | None = None
) -> dict:
    """Write a language-model bundle from a loaded checkpoint ``payload``."""
    config, tokenizer, model = load_language_model(payload)
    extras = payload["extras"]
    state_names = state_names_for(config.cell)
    state_shape = [config.layers, config.hidden_size]

    def write(directory: str) -> None:
        # time 3 and two rows gathered from three: no size of the example can be taken for a
        # constant of the graph
        tokens = torch.tensor([[4, 5, 6], [6, 5, 4]]) % tokenizer.vocab_size
        origin = torch.tensor([2, 0])
        state = [torch.randn(3, *state_shape) for _ in state_names]
        path = os.path.join(directory, STEP_GRAPH)
        _onnx_export(
            LanguageModelStepGraph(model),
            (tokens, origin, *state),
            path,
            ["tokens", "origin", *state_names],
            ["log_probs", *[f"new_{n}" for n in state_names]],
            {
                "tokens": {0: "rows", 1: "time"},
                "origin": {0: "rows"},
                **{n: {0: "prev_rows"} for n in state_names},
                "log_probs": {0: "rows"},
                **{f"new_{n}": {0: "rows"} for n in state_names},
            },
            opset,
        )
        if quantize == "int8":
            quantize_int8(path)
        spec = tokenizer.save(directory, "text")
        write_manifest(
            directory,
            {
                "kind": "language_model",
                "toolkit_version": __version__,
                "special_ids": {"pad": PAD_ID, "unk": UNK_ID, "bos": BOS_ID, "eos": EOS_ID},
                "level": extras["level"],
                "newline_id": extras["newline_id"],
                "unknown_trained": extras["unknown_trained"],
                "model": {
                    "cell": config.cell,
                    "embedding_size": config.embedding_size,
                    "hidden_size": config.hidden_size,
                    "layers": config.layers,
                    "tie_embeddings": config.tie_embeddings,
                    "vocab_size": tokenizer.vocab_size,
                },
                "graphs": {
                    "step": STEP_GRAPH,
                    "state_names": state_names,
                    "state_shapes": [state_shape for _ in state_names],
                    "opset": opset,
                    "quantized": quantize,
                },
                "tokenizers": {"text": spec},
                "training": payload.get("progress", {}),
                "config": payload["config"],
            },
        )

    return _write_bundle(out_dir, write)
