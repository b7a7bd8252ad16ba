"""Export to ONNX, and the torch-free runtime that runs the exported bundles.

``export.runtime`` is the ground floor other applications embed: numpy + onnxruntime +
sentencepiece only. The exporter on top (``python -m export``; :mod:`export.exporter`,
:mod:`export.graphs` and one module per model family) imports torch and is used only at export
time. Importing this package imports nothing heavy.
"""

__version__ = "0.1.0"
