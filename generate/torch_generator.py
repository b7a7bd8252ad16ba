"""Generate and score with the torch model through the same code the ONNX runtime uses.

:class:`TorchGenerator` is :class:`export.runtime.generator.GeneratorBase` over an
:class:`RNNLanguageModel`: prompts, sampling, stop strings and scoring are shared, only running
the model differs. Tests compare it with the exported bundle; the sampling benchmark times it.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from export.runtime.generator import GeneratorBase
from export.runtime.tokenizers import Tokenizer
from generate.model import RNNLanguageModel, model_from_checkpoint
from generate.vocabulary import newline_id
from seq2seq.core.checkpoint import load_checkpoint
from seq2seq.core.recurrent import batch_first, layers_first


@contextlib.contextmanager
def plain_rnn_kernels():
    """Run torch's own RNN kernels rather than oneDNN's (its CPU default), which cost
    milliseconds per call on one token: five times the plain kernels for a 2x384 LSTM at batch
    1. (oneDNN pays off in training, on long sequences.)"""
    previous = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = previous


class TorchGenerator(GeneratorBase):
    """``TorchGenerator(model, tokenizer).generate(["Once upon"], temperature=0)``."""

    def __init__(
        self, model: RNNLanguageModel, tokenizer: Tokenizer, unknown_trained: bool = False
    ):
        shape = (model.num_layers, model.hidden_size)
        super().__init__(
            tokenizer, [shape] * model.state_size, newline_id(tokenizer), unknown_trained
        )
        self.model = model.eval()
        self.device = next(model.parameters()).device

    @classmethod
    def from_checkpoint(cls, path: str, device: str = "cpu", trust: bool = False) -> TorchGenerator:
        """The model of a language-model checkpoint on ``device``; ``trust`` as
        :func:`seq2seq.core.checkpoint.load_checkpoint`."""
        payload = load_checkpoint(path, trust=trust, expected_kind="language_model")
        _, model, tokenizer = model_from_checkpoint(payload, path)
        return cls(model.to(device), tokenizer, payload["extras"]["unknown_trained"])

    def _run(self, tokens: torch.Tensor, state: tuple) -> tuple[np.ndarray, tuple]:
        """``tokens`` [rows, time], state [layers, rows, hidden] -> last log-probs, state."""
        with torch.no_grad(), plain_rnn_kernels():
            features, state = self.model(tokens, state)
            log_probs = self.model.log_probs(features[:, -1])
        return log_probs.cpu().numpy(), state

    def read(
        self, tokens: np.ndarray, state: list[np.ndarray]
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        current = layers_first([torch.from_numpy(s).to(self.device) for s in state])
        log_probs, new_state = self._run(torch.from_numpy(tokens).to(self.device), current)
        return log_probs, [s.cpu().numpy() for s in batch_first(new_state)]

    def step_function(self, state: list[np.ndarray]):
        """State stays in torch tensors from step to step; only tokens and log-probs cross."""
        current = layers_first([torch.from_numpy(s).to(self.device) for s in state])

        def step(tokens: np.ndarray, origin: np.ndarray) -> np.ndarray:
            nonlocal current
            index = torch.from_numpy(origin).to(self.device)
            gathered = tuple(s.index_select(1, index) for s in current)
            inputs = torch.from_numpy(tokens).to(self.device).unsqueeze(1)
            log_probs, current = self._run(inputs, gathered)
            return log_probs

        return step
