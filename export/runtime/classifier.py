"""Text classification with an exported classifier bundle:
``Classifier.load(dir).predict(["a text"], top_k=2)``.

:class:`ClassifierBase` holds what every way of running a classifier shares — encoding texts
(lowercasing, cutting to ``max_length`` tokens), batching texts of similar length, putting the
results back in input order, top-k and threshold — so the ONNX :class:`Classifier` and the
torch model's classifier (``classify.torch_classifier``) cannot drift apart. numpy +
onnxruntime only.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from export.runtime.bundle import BundleError, read_manifest, require_keys
from export.runtime.sessions import check_graph_inputs, create_session
from export.runtime.tokenizers import PAD_ID, UNK_ID, Tokenizer, load_tokenizer


class Prediction(NamedTuple):
    """One label of a text and the probability the model gives it."""

    label: str
    probability: float


def encode_texts(
    tokenizer: Tokenizer, texts: Sequence[str], max_length: int, lowercase: bool = False
) -> list[list[int]]:
    """Token ids of each text, cut to its first ``max_length`` tokens; a text of no tokens (an
    empty line) reads as one <unk>, so every text gets a prediction. Training and the runtime
    both encode with this function."""
    encoded = []
    for text in texts:
        if not isinstance(text, str):
            raise TypeError(f"a text is a str, not {type(text).__name__}")
        ids = tokenizer.encode(text.lower() if lowercase else text)[:max_length]
        encoded.append(ids or [UNK_ID])
    return encoded


def pad_ids(sequences: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad token lists: ids [batch, longest] int64 and lengths [batch] int64."""
    lengths = np.asarray([len(s) for s in sequences], dtype=np.int64)
    ids = np.full((len(sequences), int(lengths.max())), PAD_ID, dtype=np.int64)
    for row, sequence in enumerate(sequences):
        ids[row, : len(sequence)] = sequence
    return ids, lengths


class ClassifierBase:
    """Probabilities and predictions for batches of texts; subclasses implement :meth:`run`."""

    def __init__(
        self, tokenizer: Tokenizer, labels: Sequence[str], max_length: int, lowercase: bool
    ):
        self.tokenizer = tokenizer
        self.labels = list(labels)
        self.max_length = max_length
        self.lowercase = lowercase

    def run(self, ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """``ids`` [batch, time] int64, ``lengths`` [batch] int64 -> probabilities [batch,
        classes] float32."""
        raise NotImplementedError

    def probabilities(self, texts: Sequence[str] | str, batch_size: int = 64) -> np.ndarray:
        """Class probabilities of each text: [texts, classes] float32, columns in the order of
        :attr:`labels`. Texts are run in batches of ``batch_size`` texts of similar length
        (padding never changes a text's result, only how long a batch takes)."""
        if isinstance(texts, str):
            texts = [texts]
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        encoded = encode_texts(self.tokenizer, texts, self.max_length, self.lowercase)
        result = np.zeros((len(encoded), len(self.labels)), dtype=np.float32)
        order = np.argsort([len(ids) for ids in encoded], kind="stable")
        for start in range(0, len(order), batch_size):
            members = order[start : start + batch_size]
            ids, lengths = pad_ids([encoded[i] for i in members])
            result[members] = self.run(ids, lengths)
        return result

    def predict(
        self,
        texts: Sequence[str] | str,
        top_k: int = 1,
        threshold: float | None = None,
        batch_size: int = 64,
    ) -> list[list[Prediction]]:
        """For each text, its ``top_k`` most probable labels as :class:`Prediction` (label,
        probability), most probable first; with ``threshold``, only those with at least that
        probability (so maybe none)."""
        if not 1 <= top_k <= len(self.labels):
            raise ValueError(f"top_k must be in [1, {len(self.labels)}], got {top_k}")
        if threshold is not None and not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {threshold}")
        probabilities = self.probabilities(texts, batch_size)
        ranked = np.argsort(-probabilities, axis=1, kind="stable")[:, :top_k]
        predictions = []
        for row, classes in zip(probabilities, ranked):
            chosen = [Prediction(self.labels[c], float(row[c])) for c in classes]
            if threshold is not None:
                chosen = [p for p in chosen if p.probability >= threshold]
            predictions.append(chosen)
        return predictions


class Classifier(ClassifierBase):
    """Classify texts with an exported classifier bundle.

    ``Classifier.load(dir).predict(texts, top_k=1, threshold=None)`` gives each text its
    labels with probabilities; ``probabilities(texts)`` the full [texts, classes] array.
    """

    def __init__(self, directory: str, manifest: dict, tokenizer: Tokenizer, session):
        super().__init__(
            tokenizer,
            manifest["labels"],
            manifest["max_length"],
            bool(manifest.get("lowercase", False)),
        )
        self.directory = directory
        self.manifest = manifest
        self.session = session

    @classmethod
    def load(
        cls, directory: str, device: str = "cpu", threads: int | None = None, verify: bool = True
    ) -> Classifier:
        """Load and check a classification bundle. ``device``: "cpu" or "cuda" (needs
        onnxruntime-gpu); ``threads``: CPU threads (default: onnxruntime's)."""
        manifest = read_manifest(directory, expected_kind="classification", verify=verify)
        require_keys(
            manifest,
            directory,
            "classification",
            [
                ("graphs", "classifier", str),
                ("tokenizers", "text", dict),
                ("labels", None, list),
                ("max_length", None, int),
            ],
        )
        if not manifest["labels"] or not all(isinstance(x, str) for x in manifest["labels"]):
            raise BundleError(f"{directory}: model.json labels should be a list of names")
        tokenizer = load_tokenizer(manifest["tokenizers"]["text"], directory)
        path = os.path.join(directory, manifest["graphs"]["classifier"])
        # one call per batch, nothing to wait for in between: no spinning (see sessions)
        session = create_session(path, device, threads, spin_us=0)
        check_graph_inputs(session, path, ["ids", "lengths"])
        return cls(directory, manifest, tokenizer, session)

    def run(self, ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"ids": ids, "lengths": lengths})[0]
