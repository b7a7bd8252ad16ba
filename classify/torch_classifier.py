"""The torch model behind the runtime's classifier interface: the same encoding, batching,
top-k and threshold as :class:`export.runtime.Classifier`, run by the torch model of a
checkpoint (for comparisons and benchmarks)."""

from __future__ import annotations

import numpy as np
import torch

from classify.model import RNNClassifier, model_from_checkpoint
from export.runtime.classifier import ClassifierBase


class TorchClassifier(ClassifierBase):
    def __init__(self, model: RNNClassifier, tokenizer, labels, max_length: int, lowercase: bool):
        super().__init__(tokenizer, labels, max_length, lowercase)
        self.model = model.eval()

    @classmethod
    def from_checkpoint(cls, path: str) -> TorchClassifier:
        from seq2seq.core.checkpoint import load_checkpoint

        payload = load_checkpoint(path, expected_kind="classification")
        config, model, tokenizer, labels = model_from_checkpoint(payload, path)
        return cls(model, tokenizer, labels, config.max_length, config.lowercase)

    @torch.inference_mode()
    def run(self, ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        logits = self.model(torch.from_numpy(ids), torch.from_numpy(lengths)).float()
        return torch.softmax(logits, 1).numpy()
