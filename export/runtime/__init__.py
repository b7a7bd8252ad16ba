"""The torch-free runtime other applications embed: numpy + onnxruntime + sentencepiece only.

    from export.runtime import Translator, Generator, Classifier, Forecaster
    Translator.load("bundle/").translate(["Hola, mundo."], beam=5)
    Generator.load("bundle/").stream("Once upon", max_tokens=200, top_p=0.9)
    Classifier.load("bundle/").predict(["a text"], top_k=2)
    Forecaster.load("bundle/").predict(history, horizon=12)

Modules, ground floor first: ``bundle`` (reading and checking a bundle directory),
``tokenizers``, ``search`` (greedy, sampling and beam search over a step function),
``options`` (the decoding options every model kind shares), ``sessions`` (onnxruntime), then
one module per model kind (``translator``, ``generator``, ``classifier``, ``forecaster``).
Nothing here imports torch, onnx or the training packages; import-linter checks it
(pyproject.toml).
"""

from export.runtime.bundle import BundleError, read_manifest
from export.runtime.classifier import Classifier, ClassifierBase, Prediction
from export.runtime.forecaster import Forecast, Forecaster, ForecasterBase
from export.runtime.generator import Generator, GeneratorBase, split_into_streams
from export.runtime.options import DecodingOptions
from export.runtime.translator import Translation, Translator, TranslatorBase

__all__ = [
    "BundleError",
    "Classifier",
    "ClassifierBase",
    "DecodingOptions",
    "Forecast",
    "Forecaster",
    "ForecasterBase",
    "Generator",
    "GeneratorBase",
    "Prediction",
    "Translation",
    "Translator",
    "TranslatorBase",
    "read_manifest",
    "split_into_streams",
]
