"""torch -> ONNX for forecasters: an encoder graph and a one-step decoder graph.

Called by :func:`export.exporter.export_checkpoint` for checkpoints of kind ``forecasting``.
``encoder.onnx`` takes ``context`` [rows, time, channels] (scaled and transformed by the
runtime) and returns ``mean`` [rows, channels] (a direct head: [rows, horizon, channels]),
``spread`` (a Gaussian model) and the state [rows, layers, hidden]; ``decoder_step.onnx`` (an
autoregressive head) takes ``value`` [rows, channels] and the state and returns the next step's
``mean``, ``spread`` and the new state. Rows and time are dynamic axes. The scaling, the window
transform and the loop stay in numpy (:class:`export.runtime.Forecaster`).
"""

from __future__ import annotations

import os

import torch
from torch import nn

from export.graphs import DEFAULT_OPSET, manifest_base, maybe_quantize, onnx_export, write_bundle
from export.runtime.bundle import write_manifest
from forecast.model import RecurrentForecaster, model_from_checkpoint
from seq2seq.core.recurrent import batch_first, layers_first, state_names

ENCODER_GRAPH = "encoder.onnx"
DECODER_GRAPH = "decoder_step.onnx"


class EncoderGraph(nn.Module):
    def __init__(self, model: RecurrentForecaster):
        super().__init__()
        self.model = model

    def forward(self, context):
        mean, spread, state = self.model.encode(context)
        outputs = (mean,) if spread is None else (mean, spread)
        return (*outputs, *batch_first(state))


class DecoderStepGraph(nn.Module):
    def __init__(self, model: RecurrentForecaster):
        super().__init__()
        self.model = model

    def forward(self, value, *state):
        mean, spread, new_state = self.model.step(value, layers_first(state))
        outputs = (mean,) if spread is None else (mean, spread)
        return (*outputs, *batch_first(new_state))


def export_forecaster(
    payload: dict, out_dir: str, opset: int = DEFAULT_OPSET, quantize: str | None = None
) -> dict:
    """Write a forecaster bundle from a loaded checkpoint ``payload``."""
    config, model, extras = model_from_checkpoint(payload, "checkpoint")
    channels = model.channels
    names = state_names(config.cell)
    outputs = ["mean", "spread"] if model.gaussian else ["mean"]
    state_shape = [config.layers, config.hidden_size]

    def write(directory: str) -> None:
        paths = []
        encoder_path = os.path.join(directory, ENCODER_GRAPH)
        # three rows of five steps: no size of the example can be taken for a constant
        onnx_export(
            EncoderGraph(model),
            (torch.randn(3, 5, channels),),
            encoder_path,
            ["context"],
            [*outputs, *names],
            {
                "context": {0: "rows", 1: "time"},
                **{o: {0: "rows"} for o in outputs},
                **{n: {0: "rows"} for n in names},
            },
            opset,
        )
        paths.append(encoder_path)
        graphs = {"encoder": ENCODER_GRAPH, "opset": opset, "quantized": quantize}
        if model.head == "autoregressive":
            decoder_path = os.path.join(directory, DECODER_GRAPH)
            state = [torch.randn(3, *state_shape) for _ in names]
            onnx_export(
                DecoderStepGraph(model),
                (torch.randn(3, channels), *state),
                decoder_path,
                ["value", *names],
                [*outputs, *[f"new_{n}" for n in names]],
                {
                    "value": {0: "rows"},
                    **{n: {0: "rows"} for n in names},
                    **{o: {0: "rows"} for o in outputs},
                    **{f"new_{n}": {0: "rows"} for n in names},
                },
                opset,
            )
            paths.append(decoder_path)
            graphs.update(
                decoder_step=DECODER_GRAPH,
                state_names=names,
                state_shapes=[state_shape for _ in names],
            )
        maybe_quantize(paths, quantize)
        manifest = manifest_base(
            "forecasting",
            payload,
            model={
                "cell": config.cell,
                "hidden_size": config.hidden_size,
                "layers": config.layers,
                "channels": channels,
            },
            graphs=graphs,
            tokenizers={},
        )
        manifest.update(forecasting=extras["settings"], scalers=extras["scalers"])
        write_manifest(directory, manifest)

    return write_bundle(out_dir, write)
