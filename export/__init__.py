"""Export to ONNX and the torch-free runtime.

The runtime modules (``bundle``, ``tokenizers``, ``search``, ``onnx_step``, ``runtime``) import
only numpy, onnxruntime and sentencepiece. ``exporter`` and ``__main__`` import torch and are
used only at export time. Importing this package imports nothing heavy.
"""

__version__ = "0.1.0"
