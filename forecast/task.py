"""Forecasting as a task for :class:`seq2seq.core.trainer.Trainer`: windows, loss and validation.

Each series is split in time (:func:`split_series`): training windows (a context and the
``horizon`` steps after it) lie wholly before the validation period; validation is a
rolling-origin backtest over that period with the same forecasting code the runtime uses
(:class:`forecast.torch_forecaster.TorchForecaster`), scored by MASE, and the mean loss of the
validation windows. Scaling is fitted per series on its training part.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from export.runtime.forecaster import SeriesScaler, WindowTransform
from forecast.backtest import backtest_model
from forecast.data import Series
from forecast.model import RecurrentForecaster
from forecast.torch_forecaster import TorchForecaster

HALF_LOG_TWO_PI = 0.5 * math.log(2 * math.pi)


@dataclass
class SplitSeries:
    """A series cut for training: ``values`` [time, channels] without the test part,
    ``valid_start`` the first validation step."""

    name: str
    values: np.ndarray
    valid_start: int


def split_series(series: Series, config) -> SplitSeries:
    length = len(series.values)
    test = int(round(config.test_fraction * length))
    valid = int(round(config.valid_fraction * length))
    kept = series.values[: length - test]
    return SplitSeries(series.name, kept, len(kept) - valid)


def seasonal_period(config, series: list[Series]) -> int:
    return config.season or series[0].axis.freq.season()


def forecast_settings(config, channels: int, period: int, channel_names: list[str]) -> dict:
    """What the forecasting loop needs besides the network (stored in checkpoints and bundles)."""
    return {
        "channels": channels,
        "channel_names": channel_names,
        "context_length": config.context_length,
        "horizon": config.horizon,
        "head": config.head,
        "distribution": config.distribution,
        "transform": config.transform,
        "period": period,
        "coverage": config.coverage,
        "scaling": config.scaling,
    }


def make_windows(split: SplitSeries, scaled: np.ndarray, transform, config, end: int, start=0):
    """(inputs [n, context, channels], targets [n, horizon, channels]) of the windows whose
    forecast starts at an origin in [start, end - horizon] with a full context."""
    context, horizon = config.context_length, config.horizon
    first = max(start, context + transform.warmup)
    inputs, targets = [], []
    for origin in range(first, end - horizon + 1):
        history = scaled[origin - context - transform.warmup : origin]
        inputs.append(transform.inputs(history, context))
        targets.append(transform.targets(history, scaled[origin : origin + horizon]))
    channels = scaled.shape[1]
    if not inputs:
        return np.zeros((0, context, channels)), np.zeros((0, horizon, channels))
    return np.stack(inputs), np.stack(targets)


class ForecastTask:
    kind = "forecasting"
    higher_is_better = False

    def __init__(self, config, model: RecurrentForecaster, series: list[Series], names, log=print):
        self.config = config
        self.model = model
        self.selection_metric = config.select_on
        self.device = next(model.parameters()).device
        self.period = seasonal_period(config, series)
        self.transform = WindowTransform(config.transform, self.period)
        self.splits = [split_series(s, config) for s in series]
        self.scalers = {
            s.name: SeriesScaler.fit(s.values[: s.valid_start], config.scaling) for s in self.splits
        }
        self.settings = forecast_settings(config, series[0].values.shape[1], self.period, names)
        train, valid = [], []
        for s in self.splits:
            scaled = self.scalers[s.name].transform(s.values)
            train.append(make_windows(s, scaled, self.transform, config, s.valid_start))
            valid.append(
                make_windows(s, scaled, self.transform, config, len(s.values), s.valid_start)
            )
        self.train_inputs = np.concatenate([w[0] for w in train]).astype(np.float32)
        self.train_targets = np.concatenate([w[1] for w in train]).astype(np.float32)
        self.valid_inputs = np.concatenate([w[0] for w in valid]).astype(np.float32)
        self.valid_targets = np.concatenate([w[1] for w in valid]).astype(np.float32)
        if not len(self.train_inputs) or not len(self.valid_inputs):
            raise ValueError(
                f"no {'training' if not len(self.train_inputs) else 'validation'} window of "
                f"context {config.context_length} + horizon {config.horizon} fits the data; use "
                "a shorter context_length or horizon, or more data"
            )
        log(
            f"windows: {len(self.train_inputs):,} for training, {len(self.valid_inputs):,} for "
            f"validation (context {config.context_length}, horizon {config.horizon}, transform "
            f"{config.transform}, seasonal period {self.period})"
        )

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array)).to(self.device)

    # ----------------------------------------------------------------- training

    def epoch_batches(self, epoch: int) -> list[np.ndarray]:
        """Window indices, shuffled by (seed, epoch), in batches of ``batch_size``."""
        order = np.random.default_rng([self.config.seed, epoch]).permutation(len(self.train_inputs))
        size = self.config.batch_size
        return [order[i : i + size] for i in range(0, len(order), size)]

    def start_epoch(self, epoch: int) -> None:
        pass

    def loss_sum(self, inputs: torch.Tensor, targets: torch.Tensor, teacher_forcing: float):
        """The summed loss of forecasts for windows ``inputs`` [n, context, channels] against
        ``targets`` [n, horizon, channels]."""
        mean, spread = self.model(inputs, targets.size(1), targets, teacher_forcing)
        mean = mean.float()
        if spread is not None:
            spread = spread.float()
            z = (targets - mean) / spread
            return (HALF_LOG_TWO_PI + torch.log(spread) + 0.5 * z * z).sum()
        if self.config.loss == "mae":
            return (targets - mean).abs().sum()
        return ((targets - mean) ** 2).sum()

    def train_step(self, batch: np.ndarray):
        inputs = self._tensor(self.train_inputs[batch])
        targets = self._tensor(self.train_targets[batch])
        loss = self.loss_sum(inputs, targets, self.config.teacher_forcing)
        count = int(targets.numel())
        stats = {
            "loss_sum": float(loss.detach()),
            "nll_sum": float(loss.detach()),
            "targets": count,
            "throughput_tokens": int(targets.shape[0] * targets.shape[1]),
        }
        return loss, stats

    # ----------------------------------------------------------------- evaluation

    def forecaster(self) -> TorchForecaster:
        scalers = {name: scaler.state() for name, scaler in self.scalers.items()}
        return TorchForecaster(self.model, self.settings, scalers)

    def evaluate(self) -> dict:
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                inputs, targets = self._tensor(self.valid_inputs), self._tensor(self.valid_targets)
                loss = float(self.loss_sum(inputs, targets, 0.0)) / targets.numel()
            means, _, _ = self.validation_backtest(self.forecaster().predict_many)
        finally:
            self.model.train(was_training)
        return {**means, "loss": loss, "nll": loss}

    def validation_backtest(self, predict_many):
        """The rolling-origin backtest over the validation periods (origins every half
        horizon)."""
        c = self.config
        fraction = [(len(s.values) - s.valid_start) / len(s.values) for s in self.splits]
        return backtest_model(predict_many, self.splits, c.horizon, fraction, self.period)

    # ----------------------------------------------------------------- checkpoint

    def checkpoint_extras(self) -> dict:
        return {
            "settings": self.settings,
            "scalers": {name: scaler.state() for name, scaler in self.scalers.items()},
        }

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass
