"""torch -> ONNX: write a bundle from any checkpoint of this toolkit (``python -m export``).

:func:`export_checkpoint` reads the checkpoint and hands it to its family's exporter, by the
checkpoint's kind: :mod:`export.translation`, :mod:`export.language_model`,
:mod:`export.classification`, :mod:`export.forecasting`. The helpers they share are in
:mod:`export.graphs`. Imports torch.
"""

from __future__ import annotations

from collections.abc import Callable

from export.graphs import DEFAULT_OPSET, QUANTIZE_CHOICES

KINDS = ("translation", "language_model", "classification", "forecasting")


def exporter_for(kind: str) -> Callable:
    """The function that exports a checkpoint payload of ``kind``, imported only when needed
    (each imports its family's model code)."""
    if kind == "translation":
        from export.translation import export_translation

        return export_translation
    if kind == "language_model":
        from export.language_model import export_language_model

        return export_language_model
    if kind == "classification":
        from export.classification import export_classifier

        return export_classifier
    if kind == "forecasting":
        from export.forecasting import export_forecaster

        return export_forecaster
    raise ValueError(f"no exporter for model kind {kind!r} (known: {', '.join(KINDS)})")


def export_checkpoint(
    checkpoint: str,
    out_dir: str,
    opset: int = DEFAULT_OPSET,
    quantize: str | None = None,
    trust_checkpoint: bool = False,
) -> dict:
    """Export any checkpoint of this toolkit to a bundle in ``out_dir``; returns its manifest.
    ``trust_checkpoint`` as :func:`seq2seq.core.checkpoint.load_checkpoint`."""
    from seq2seq.core.checkpoint import load_checkpoint

    if quantize is not None and quantize not in QUANTIZE_CHOICES:
        raise ValueError(f"quantize must be int8 (or absent), got {quantize!r}")
    payload = load_checkpoint(checkpoint, trust=trust_checkpoint)
    try:
        exporter = exporter_for(payload["kind"])
    except ValueError as error:
        raise ValueError(f"{checkpoint}: {error}") from None
    return exporter(payload, out_dir, opset, quantize)
