"""Rolling-origin backtests and their scores: MASE, sMAPE, MAE, RMSE and interval coverage.

The backtest period is the last ``fraction`` of each series; forecasts of ``horizon`` steps start
at origins every ``every`` steps (half the horizon by default) from its first step, each from
the history before its origin, and every forecast window lies inside the series. MASE divides
the absolute errors by the in-sample seasonal-naive error (the mean of ``|y[t] - y[t - period]|``
before the backtest period), so 1.0 is as good as seasonal naive was in-sample. numpy only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


def backtest_origins(length: int, horizon: int, fraction: float, every: int = 0) -> list[int]:
    """The forecast origins (index of the first forecast step) of a series of ``length``."""
    start = length - int(round(fraction * length))
    every = every or max(1, horizon // 2)
    origins = list(range(start, length - horizon + 1, every))
    if not origins:
        raise ValueError(
            f"a backtest of horizon {horizon} over the last {fraction:g} of {length} steps has "
            "no origin; use a shorter horizon or a larger fraction"
        )
    return origins


def seasonal_scale(history: np.ndarray, period: int) -> float:
    """The in-sample mean absolute error of seasonal naive (naive when ``period`` is 1 or the
    history is shorter than two seasons); 1.0 for a constant history."""
    lag = period if period > 1 and len(history) > period else 1
    errors = np.abs(history[lag:] - history[:-lag])
    scale = float(errors.mean()) if len(errors) else 0.0
    return scale if scale > 1e-12 else 1.0


@dataclass
class Windows:
    """The backtest windows of one series: ``actual`` [origins, horizon] and ``scale`` (MASE)."""

    origins: list[int]
    actual: np.ndarray
    scale: float


def series_windows(target: np.ndarray, horizon: int, fraction: float, period: int, every=0):
    origins = backtest_origins(len(target), horizon, fraction, every)
    actual = np.stack([target[o : o + horizon] for o in origins])
    return Windows(origins, actual, seasonal_scale(target[: origins[0]], period))


def scores(
    actual: np.ndarray,
    forecast: np.ndarray,
    scale: float,
    lower: np.ndarray | None = None,
    upper: np.ndarray | None = None,
) -> dict:
    """Scores of forecasts against ``actual`` (same shapes, any)."""
    error = forecast - actual
    denominator = np.abs(actual) + np.abs(forecast)
    ratio = np.where(
        denominator > 0, 2 * np.abs(error) / np.where(denominator > 0, denominator, 1), 0
    )
    result = {
        "mase": float(np.abs(error).mean() / scale),
        "smape": float(100 * ratio.mean()),
        "mae": float(np.abs(error).mean()),
        "rmse": float(np.sqrt((error**2).mean())),
    }
    if lower is not None and upper is not None:
        result["coverage"] = float(((actual >= lower) & (actual <= upper)).mean())
    return result


def mean_scores(per_series: list[dict]) -> dict:
    """The mean of every score over series."""
    keys = set.intersection(*(set(s) for s in per_series)) - {"series"}
    return {k: float(np.mean([s[k] for s in per_series])) for k in sorted(keys)}


def per_series_fraction(fraction, series: list) -> list[float]:
    """``fraction``: one share for every series, or a list of one per series."""
    return list(fraction) if isinstance(fraction, (list, tuple)) else [fraction] * len(series)


def backtest_model(
    predict_many: Callable, series: list, horizon: int, fraction: float, period: int, every=0
) -> tuple[dict, list[dict], list]:
    """Backtest a model over every series at once: ``predict_many(histories, horizon, names)``
    returns :class:`export.runtime.forecaster.Forecast` objects. ``series`` holds objects with
    ``name`` and ``values`` [time, channels]. Returns the mean scores, the scores per series,
    and the forecasts (per series, per origin) for plots."""
    histories, names, windows = [], [], []
    for s, share in zip(series, per_series_fraction(fraction, series)):
        w = series_windows(s.values[:, 0], horizon, share, period, every)
        windows.append(w)
        for origin in w.origins:
            histories.append(s.values[:origin])
            names.append(s.name or None)
    forecasts = predict_many(histories, horizon, names)
    per_series, by_series, position = [], [], 0
    for s, w in zip(series, windows):
        mine = forecasts[position : position + len(w.origins)]
        position += len(w.origins)
        point = np.stack([f.forecast for f in mine])
        bounds = (None, None)
        if mine[0].lower is not None:
            bounds = (np.stack([f.lower for f in mine]), np.stack([f.upper for f in mine]))
        per_series.append({"series": s.name, **scores(w.actual, point, w.scale, *bounds)})
        by_series.append(mine)
    return mean_scores(per_series), per_series, by_series


def backtest_baseline(
    forecast: Callable, series: list, horizon: int, fraction: float, period: int, every=0
) -> tuple[dict, list[dict]]:
    """Backtest a baseline ``forecast(history [time], horizon, period)`` on the target."""
    per_series = []
    for s, share in zip(series, per_series_fraction(fraction, series)):
        target = s.values[:, 0]
        w = series_windows(target, horizon, share, period, every)
        point = np.stack([forecast(target[:o], horizon, period) for o in w.origins])
        per_series.append({"series": s.name, **scores(w.actual, point, w.scale)})
    return mean_scores(per_series), per_series


def compare(
    forecaster, series: list, horizon: int, fraction, period: int, baselines: list[str], every=0
) -> dict:
    """The model (a :class:`export.runtime.forecaster.ForecasterBase`) and each baseline,
    backtested over the same windows: ``{"model": scores, name: scores, ...}``, each with
    ``per_series`` beside the means."""
    from forecast.baselines import BASELINES

    means, per_series, _ = backtest_model(
        forecaster.predict_many, series, horizon, fraction, period, every
    )
    results = {"model": {**means, "per_series": per_series}}
    for name in baselines:
        means, per_series = backtest_baseline(
            BASELINES[name], series, horizon, fraction, period, every
        )
        results[name] = {**means, "per_series": per_series}
    return results


def format_table(results: dict) -> str:
    """The mean scores of :func:`compare` as an aligned text table, best MASE first."""
    keys = ["mase", "smape", "mae", "rmse", "coverage"]
    shown = [k for k in keys if any(k in r for r in results.values())]
    lines = [f"{'method':<16}" + "".join(f"{k:>10}" for k in shown)]
    for name, result in sorted(results.items(), key=lambda item: item[1]["mase"]):
        cells = "".join(f"{result[k]:>10.3f}" if k in result else f"{'':>10}" for k in shown)
        lines.append(f"{name:<16}{cells}")
    return "\n".join(lines)
