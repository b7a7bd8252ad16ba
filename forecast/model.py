"""The recurrent forecaster: an encoder over the context window, then either an autoregressive
decoder that reads each forecast step back in, or a direct head that outputs every step at once.

The state is passed in and out explicitly (as the language model's), so the exported encoder
graph returns it and the one-step decoder graph carries it from step to step. Inputs and outputs
are in the space of :class:`export.runtime.forecaster.WindowTransform` (scaled, relative to the
window).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional

from seq2seq.core.recurrent import StackedRNN, initialize_weights

MIN_SPREAD = 1e-4  # keeps the Gaussian's likelihood finite on a noiseless series


class RecurrentForecaster(nn.Module):
    """``channels`` values per step (the target and the covariates) in, the same out.

    A Gaussian model outputs a mean and a standard deviation (``spread``) per value; a point
    model only the mean."""

    def __init__(
        self,
        channels: int,
        cell: str = "gru",
        hidden_size: int = 64,
        num_layers: int = 1,
        dropout: float = 0.0,
        head: str = "autoregressive",
        horizon: int = 12,
        gaussian: bool = False,
        init: str = "xavier",
    ):
        super().__init__()
        self.channels = channels
        self.cell = cell
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.head = head
        self.horizon = horizon
        self.gaussian = gaussian
        self.encoder = StackedRNN(cell, channels, hidden_size, num_layers, dropout)
        self.decoder = (
            StackedRNN(cell, channels, hidden_size, num_layers, dropout)
            if head == "autoregressive"
            else None
        )
        steps = horizon if head == "direct" else 1
        self.output = nn.Linear(hidden_size, steps * channels * (2 if gaussian else 1))
        initialize_weights(self, init)

    @property
    def state_size(self) -> int:
        return self.encoder.state_size

    def _outputs(self, hidden: torch.Tensor):
        """hidden [rows, hidden] -> mean and spread (or None) [rows, channels] (direct head:
        [rows, horizon, channels])."""
        out = self.output(hidden)
        shape = (-1, self.horizon, self.channels) if self.head == "direct" else (-1, self.channels)
        if not self.gaussian:
            return out.reshape(shape), None
        mean, raw = out.chunk(2, dim=-1)
        return mean.reshape(shape), (functional.softplus(raw) + MIN_SPREAD).reshape(shape)

    def encode(self, context: torch.Tensor):
        """``context`` [rows, time, channels] -> mean, spread (or None), state (tensors
        [layers, rows, hidden])."""
        features, state = self.encoder(context)
        mean, spread = self._outputs(features[:, -1])
        return mean, spread, state

    def step(self, value: torch.Tensor, state: tuple):
        """``value`` [rows, channels]: the previous step -> the next step's mean, spread and
        the new state."""
        hidden, state = self.decoder.cell_step(value, state)
        mean, spread = self._outputs(hidden)
        return mean, spread, state

    def forward(
        self,
        context: torch.Tensor,
        horizon: int,
        targets: torch.Tensor | None = None,
        teacher_forcing: float = 0.0,
    ):
        """Forecast ``horizon`` steps after ``context`` [rows, time, channels]: means and
        spreads (or None) [rows, horizon, channels]. In training, a decoder step reads the true
        previous value from ``targets`` [rows, horizon, channels] with probability
        ``teacher_forcing`` (per row), otherwise its own forecast."""
        mean, spread, state = self.encode(context)
        if self.head == "direct":
            return mean[:, :horizon], None if spread is None else spread[:, :horizon]
        means, spreads = [mean], [spread]
        masks = self.decoder.make_masks(context)
        for k in range(1, horizon):
            value = mean
            if targets is not None and teacher_forcing > 0:
                use_true = torch.rand(value.size(0), 1, device=value.device) < teacher_forcing
                value = torch.where(use_true, targets[:, k - 1], mean)
            hidden, state = self.decoder.cell_step(value, state, masks)
            mean, spread = self._outputs(hidden)
            means.append(mean)
            spreads.append(spread)
        stacked = None if spread is None else torch.stack(spreads, dim=1)
        return torch.stack(means, dim=1), stacked


def build_model(config, channels: int) -> RecurrentForecaster:
    return RecurrentForecaster(
        channels=channels,
        cell=config.cell,
        hidden_size=config.hidden_size,
        num_layers=config.layers,
        dropout=config.dropout,
        head=config.head,
        horizon=config.horizon,
        gaussian=config.distribution == "gaussian",
        init=config.init,
    )


def model_from_checkpoint(payload: dict, origin: str) -> tuple:
    """The config, model (eval mode, on CPU) and extras (channels, scalers, forecasting
    settings) of a forecasting checkpoint ``payload``; ``origin`` names it in errors."""
    from forecast.config import ForecastConfig
    from seq2seq.core.config import config_from_dict

    config = config_from_dict(ForecastConfig, payload["config"], origin)
    extras = payload["extras"]
    model = build_model(config, int(extras["settings"]["channels"]))
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as error:
        raise ValueError(
            f"{origin}: the weights do not fit the model its config describes ({error})"
        ) from None
    return config, model.eval(), extras
