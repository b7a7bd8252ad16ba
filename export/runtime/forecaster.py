"""Time-series forecasting with an exported forecaster bundle:
``Forecaster.load(dir).predict(history, horizon=12)``.

Everything around the network is numpy and written once here, so training (``forecast.task``),
the torch forecaster (``forecast.torch_forecaster``) and the ONNX runtime prepare windows and
invert forecasts with the same code:

- :class:`SeriesScaler`: per-series, per-channel scaling (standard or min-max), fitted on a
  series' training part and stored in the bundle;
- :class:`WindowTransform`: what the network reads and predicts, relative to the window:
  ``none`` (scaled values), ``level`` (minus the window's last value) or
  ``seasonal_difference`` (``x[t] - x[t - period]``; forecasts are integrated back);
- :class:`ForecasterBase`: the autoregressive loop over two model functions, ``encode``
  (context -> first forecast step and state) and ``step`` (previous forecast and state -> next
  step and state); :class:`Forecaster` runs them as the bundle's ONNX graphs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from export.runtime.bundle import BundleError, read_manifest, require_keys
from export.runtime.sessions import check_graph_inputs, create_session

SCALINGS = ("standard", "minmax", "none")
TRANSFORMS = ("none", "level", "seasonal_difference")
# two-sided standard-normal quantiles of the interval coverages the runtime offers
NORMAL_QUANTILES = {0.5: 0.6745, 0.8: 1.2816, 0.9: 1.6449, 0.95: 1.9600, 0.99: 2.5758}


@dataclass
class SeriesScaler:
    """``scaled = (value - shift) / scale`` per channel. ``shift``, ``scale``: [channels]."""

    shift: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, values: np.ndarray, kind: str) -> SeriesScaler:
        """Fit on ``values`` [time, channels]: ``standard`` (mean, standard deviation),
        ``minmax`` (to [0, 1]) or ``none``. A constant channel gets scale 1."""
        values = np.asarray(values, dtype=np.float64)
        channels = values.shape[1]
        if kind == "standard":
            shift, scale = values.mean(axis=0), values.std(axis=0)
        elif kind == "minmax":
            shift, scale = values.min(axis=0), values.max(axis=0) - values.min(axis=0)
        elif kind == "none":
            shift, scale = np.zeros(channels), np.ones(channels)
        else:
            raise ValueError(f"scaling must be one of {', '.join(SCALINGS)}, got {kind!r}")
        scale = np.where(scale > 1e-12, scale, 1.0)
        return cls(shift.astype(np.float64), scale.astype(np.float64))

    def transform(self, values: np.ndarray) -> np.ndarray:
        return (np.asarray(values, dtype=np.float64) - self.shift) / self.scale

    def inverse(self, scaled: np.ndarray) -> np.ndarray:
        return np.asarray(scaled, dtype=np.float64) * self.scale + self.shift

    def state(self) -> dict:
        return {"shift": self.shift.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_state(cls, state: dict) -> SeriesScaler:
        return cls(np.asarray(state["shift"], np.float64), np.asarray(state["scale"], np.float64))


@dataclass
class WindowTransform:
    """What the network reads and predicts, relative to its window (see the module doc)."""

    kind: str = "none"
    period: int = 1

    def __post_init__(self):
        if self.kind not in TRANSFORMS:
            raise ValueError(f"transform must be one of {', '.join(TRANSFORMS)}, got {self.kind!r}")
        if self.period < 1:
            raise ValueError(f"the seasonal period must be at least 1, got {self.period}")

    @property
    def warmup(self) -> int:
        """Values before the first one the network reads (a seasonal difference looks back)."""
        return self.period if self.kind == "seasonal_difference" else 0

    def inputs(self, history: np.ndarray, context: int) -> np.ndarray:
        """The network's input for a scaled ``history`` [time, channels]: its last ``context``
        steps (fewer when the history is shorter), transformed: [steps, channels]."""
        if len(history) <= self.warmup:
            raise ValueError(
                f"a history needs more than {self.warmup} values for a seasonal difference of "
                f"period {self.period}, got {len(history)}"
            )
        if self.kind == "seasonal_difference":
            values = history[self.period :] - history[: -self.period]
        elif self.kind == "level":
            values = history - history[-1]
        else:
            values = history
        return values[-context:]

    def targets(self, history: np.ndarray, future: np.ndarray) -> np.ndarray:
        """What the network should predict for ``future`` [horizon, channels] after ``history``
        (training targets): [horizon, channels]."""
        if self.kind == "level":
            return future - history[-1]
        if self.kind == "seasonal_difference":
            joined = np.concatenate([history[-self.period :], future])
            return joined[self.period :] - joined[: -self.period]
        return future

    def invert(
        self, history: np.ndarray, predicted: np.ndarray, spread: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Scaled forecasts [..., horizon, channels] from the network's ``predicted`` values
        (and their standard deviations ``spread``, same shape) after ``history`` [..., time,
        channels] (leading axes: rows, all inverted at once). A seasonal difference is
        integrated step by step; its variance adds up the same way (steps assumed
        independent)."""
        if self.kind == "level":
            return predicted + history[..., -1:, :], spread
        if self.kind == "none":
            return predicted, spread
        m = self.period
        values = np.concatenate([history[..., -m:, :], np.zeros_like(predicted)], axis=-2)
        variance = np.zeros_like(values) if spread is not None else None
        for k in range(predicted.shape[-2]):
            values[..., m + k, :] = values[..., k, :] + predicted[..., k, :]
            if variance is not None:
                variance[..., m + k, :] = variance[..., k, :] + spread[..., k, :] ** 2
        deviation = None if variance is None else np.sqrt(variance[..., m:, :])
        return values[..., m:, :], deviation


@dataclass
class Forecast:
    """One series' forecast: ``forecast`` [horizon] of the target; ``lower`` and ``upper``
    [horizon] (a probabilistic model; None otherwise); ``channels`` [horizon, channels] the
    point forecasts of the target and every covariate."""

    forecast: np.ndarray
    lower: np.ndarray | None
    upper: np.ndarray | None
    channels: np.ndarray


class ForecasterBase:
    """The forecasting loop shared by the ONNX :class:`Forecaster` and the torch model
    (``forecast.torch_forecaster``). Subclasses give :meth:`encode` and :meth:`step`.

    ``settings`` holds ``context_length``, ``horizon`` (the model's own: the direct head's
    length, the training horizon of an autoregressive one), ``head``, ``distribution``,
    ``transform``, ``period`` and ``coverage``; ``scalers`` maps series names to
    :class:`SeriesScaler` states."""

    def __init__(self, settings: dict, scalers: dict):
        self.settings = settings
        self.context_length = int(settings["context_length"])
        self.model_horizon = int(settings["horizon"])
        self.head = settings["head"]
        self.probabilistic = settings["distribution"] == "gaussian"
        self.transform = WindowTransform(settings["transform"], int(settings["period"]))
        self.coverage = float(settings["coverage"])
        self.scaling = settings["scaling"]
        self.scalers = {name: SeriesScaler.from_state(s) for name, s in scalers.items()}

    # ----------------------------------------------------------------- the model
    def encode(self, context: np.ndarray):
        """``context`` [rows, time, channels] float32 -> mean [rows, channels] (direct head:
        [rows, horizon, channels]), spread of the same shape or None, and the state."""
        raise NotImplementedError

    def step(self, value: np.ndarray, state):
        """``value`` [rows, channels] float32 (the previous step's forecast) and the state ->
        mean [rows, channels], spread or None, new state."""
        raise NotImplementedError

    @staticmethod
    def take_rows(state, order: np.ndarray):
        """The state with its rows in ``order`` (rows are the first axis of every tensor)."""
        return [s[order] for s in state]

    @staticmethod
    def join_rows(states: list):
        """Concatenate the rows of several states."""
        return [np.concatenate(parts, axis=0) for parts in zip(*states)]

    # ----------------------------------------------------------------- forecasting
    def scaler_for(self, series: str | None, history: np.ndarray) -> SeriesScaler:
        """The stored scaler of ``series``; the only one of a one-series model; or, for a
        series the model never saw, one fitted on the history itself."""
        if series is not None and series in self.scalers:
            return self.scalers[series]
        if series is None and len(self.scalers) == 1:
            return next(iter(self.scalers.values()))
        return SeriesScaler.fit(history, self.scaling)

    def predict(self, history, horizon: int, series: str | None = None) -> Forecast:
        """The ``horizon`` steps after ``history`` ([time] or [time, channels]: the target,
        then the covariates, as in training)."""
        return self.predict_many([history], horizon, None if series is None else [series])[0]

    def predict_many(
        self, histories: Sequence, horizon: int, series: Sequence[str | None] | None = None
    ) -> list[Forecast]:
        """Forecast several histories together: one encoder call per distinct input length and
        one step call per forecast step for all of them. Each history gets exactly the forecast
        it gets alone (up to float rounding)."""
        if horizon < 1:
            raise ValueError(f"horizon must be at least 1, got {horizon}")
        if self.head == "direct" and horizon > self.model_horizon:
            raise ValueError(
                f"this model has a direct head of {self.model_horizon} steps; ask for at most "
                f"{self.model_horizon}"
            )
        if not histories:
            return []
        names = list(series) if series is not None else [None] * len(histories)
        if len(names) != len(histories):
            raise ValueError(f"{len(histories)} histories but {len(names)} series names")
        prepared = [self._prepare(h, n) for h, n in zip(histories, names)]
        means, spreads = self._run([inputs for _, _, inputs in prepared], horizon)
        # every row at once: the last season (or value) of each scaled history, and its scaler
        tails = np.stack([tail for _, tail, _ in prepared])
        shift = np.stack([scaler.shift for scaler, _, _ in prepared])[:, None, :]
        scale = np.stack([scaler.scale for scaler, _, _ in prepared])[:, None, :]
        values, deviation = self.transform.invert(tails, means, spreads)
        points = values * scale + shift
        lower = upper = [None] * len(points)
        if deviation is not None:
            z = NORMAL_QUANTILES[self.coverage] * deviation * scale
            lower, upper = (points - z)[:, :, 0], (points + z)[:, :, 0]
        return [
            Forecast(point[:, 0], low, high, point)
            for point, low, high in zip(points, lower, upper)
        ]

    def _prepare(self, history, name):
        values = np.asarray(history, dtype=np.float64)
        if values.ndim == 1:
            values = values[:, None]
        channels = int(self.settings["channels"])
        if values.ndim != 2 or values.shape[1] != channels:
            raise ValueError(
                f"a history is [time] or [time, {channels}] (target and covariates), got shape "
                f"{values.shape}"
            )
        if not np.isfinite(values).all():
            raise ValueError("a history holds NaN or infinite values; fill them first")
        scaler = self.scaler_for(name, values)
        # only the steps the network reads (and the season before them) need scaling
        scaled = scaler.transform(values[-(self.context_length + self.transform.warmup) :])
        inputs = self.transform.inputs(scaled, self.context_length)  # checks the length
        return scaler, scaled[-max(1, self.transform.warmup) :], inputs

    def _run(self, inputs: list[np.ndarray], horizon: int):
        """Network outputs for every row: means [rows, horizon, channels] and spreads (or
        None), in the transformed space."""
        lengths = np.array([len(x) for x in inputs])
        groups = [np.flatnonzero(lengths == n) for n in np.unique(lengths)]
        parts = []
        for rows in groups:
            context = np.stack([inputs[r] for r in rows]).astype(np.float32)
            parts.append(self.encode(context))
        order = np.argsort(np.concatenate(groups), kind="stable")
        mean = np.concatenate([p[0] for p in parts])[order]
        spread = None if parts[0][1] is None else np.concatenate([p[1] for p in parts])[order]
        if self.head == "direct":
            spread = None if spread is None else spread[:, :horizon]
            return mean[:, :horizon], spread
        state = self.take_rows(self.join_rows([p[2] for p in parts]), order)
        means, spreads = [mean], [spread]
        for _ in range(horizon - 1):
            mean, spread, state = self.step(mean.astype(np.float32), state)
            means.append(mean)
            spreads.append(spread)
        stacked_spread = None if spread is None else np.stack(spreads, axis=1)
        return np.stack(means, axis=1), stacked_spread


class Forecaster(ForecasterBase):
    """A forecaster bundle run with onnxruntime: ``encoder.onnx`` reads the context,
    ``decoder_step.onnx`` makes each further step (autoregressive head)."""

    def __init__(self, directory: str, device: str = "cpu", threads: int | None = None):
        manifest = read_manifest(directory, expected_kind="forecasting")
        require_keys(
            manifest,
            directory,
            "forecasting",
            [("forecasting", None, dict), ("graphs", None, dict), ("scalers", None, dict)],
        )
        super().__init__(manifest["forecasting"], manifest["scalers"])
        self.manifest = manifest
        self.directory = directory
        graphs = manifest["graphs"]
        self.state_names = list(graphs.get("state_names", []))
        self.output_names = ["mean", "spread"] if self.probabilistic else ["mean"]
        path = os.path.join(directory, graphs["encoder"])
        self.encoder = create_session(path, device, threads, spin_us=0)
        check_graph_inputs(self.encoder, path, ["context"])
        self.decoder = None
        if self.head == "autoregressive":
            path = os.path.join(directory, graphs["decoder_step"])
            self.decoder = create_session(path, device, threads)
            check_graph_inputs(self.decoder, path, ["value", *self.state_names])

    @classmethod
    def load(cls, directory: str, device: str = "cpu", threads: int | None = None) -> Forecaster:
        if not os.path.isdir(directory):
            raise BundleError(f"{directory}: no such bundle directory")
        return cls(directory, device, threads)

    def _split(self, outputs: list):
        spread = outputs[1] if self.probabilistic else None
        return outputs[0], spread, outputs[len(self.output_names) :]

    def encode(self, context: np.ndarray):
        return self._split(self.encoder.run(None, {"context": context}))

    def step(self, value: np.ndarray, state):
        feeds = {"value": value, **dict(zip(self.state_names, state))}
        return self._split(self.decoder.run(None, feeds))
