"""Forecast with the torch model through the same code the ONNX runtime uses.

:class:`TorchForecaster` is :class:`export.runtime.forecaster.ForecasterBase` over a
:class:`forecast.model.RecurrentForecaster`: scaling, window transforms, the autoregressive loop
and the intervals are shared, only running the network differs. Training validates with it;
tests and the benchmark compare it with the exported bundle.
"""

from __future__ import annotations

import numpy as np
import torch

from export.runtime.forecaster import ForecasterBase
from forecast.model import RecurrentForecaster, model_from_checkpoint
from seq2seq.core.recurrent import batch_first, layers_first


class TorchForecaster(ForecasterBase):
    """``TorchForecaster(model, settings, scalers).predict(history, horizon=12)``; the state
    travels between steps in the runtime's layout ([rows, layers, hidden] numpy arrays)."""

    def __init__(self, model: RecurrentForecaster, settings: dict, scalers: dict):
        super().__init__(settings, scalers)
        self.model = model
        self.device = next(model.parameters()).device

    @classmethod
    def from_checkpoint(cls, payload: dict, origin: str = "checkpoint") -> TorchForecaster:
        _, model, extras = model_from_checkpoint(payload, origin)
        return cls(model, extras["settings"], extras["scalers"])

    def _numpy(self, mean, spread, state):
        spread = None if spread is None else spread.float().cpu().numpy()
        state = [s.float().cpu().numpy() for s in batch_first(state)]
        return mean.float().cpu().numpy(), spread, state

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).to(self.device)

    def encode(self, context: np.ndarray):
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                return self._numpy(*self.model.encode(self._tensor(context)))
        finally:
            self.model.train(was_training)

    def step(self, value: np.ndarray, state):
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                state = layers_first([self._tensor(s) for s in state])
                return self._numpy(*self.model.step(self._tensor(value), state))
        finally:
            self.model.train(was_training)
