"""The simple forecasts every figure stands beside: naive, seasonal naive, drift, and ETS
(Holt-Winters exponential smoothing, additive trend and season) when statsmodels is installed.

Each is ``forecast(history [time], horizon, period) -> [horizon]``. numpy only (ETS imports
statsmodels, an optional extra: ``pip install .[forecast]``).
"""

from __future__ import annotations

import warnings

import numpy as np


def naive(history: np.ndarray, horizon: int, period: int) -> np.ndarray:
    """The last value, repeated."""
    return np.full(horizon, history[-1], dtype=np.float64)


def seasonal_naive(history: np.ndarray, horizon: int, period: int) -> np.ndarray:
    """The value one season back (the last season, repeated)."""
    if period <= 1 or len(history) < period:
        return naive(history, horizon, period)
    season = history[-period:]
    return np.array([season[k % period] for k in range(horizon)], dtype=np.float64)


def drift(history: np.ndarray, horizon: int, period: int) -> np.ndarray:
    """The line through the first and the last value, continued."""
    if len(history) < 2:
        return naive(history, horizon, period)
    slope = (history[-1] - history[0]) / (len(history) - 1)
    return history[-1] + slope * np.arange(1, horizon + 1)


def ets_available() -> bool:
    try:
        import statsmodels  # noqa: F401
    except ImportError:
        return False
    return True


def ets(history: np.ndarray, horizon: int, period: int) -> np.ndarray:
    """Holt-Winters: additive trend, and an additive season of ``period`` when the history
    holds two seasons or more (ETS(A,A,A); ETS(A,A,N) otherwise)."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    seasonal = "add" if period > 1 and len(history) >= 2 * period else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence notes on short or flat series
        model = ExponentialSmoothing(
            np.asarray(history, dtype=np.float64),
            trend="add",
            seasonal=seasonal,
            seasonal_periods=period if seasonal else None,
            initialization_method="estimated",
        ).fit()
        return np.asarray(model.forecast(horizon), dtype=np.float64)


BASELINES = {"naive": naive, "seasonal_naive": seasonal_naive, "drift": drift, "ets": ets}


def available_baselines() -> list[str]:
    """The baselines this install can run (ETS needs statsmodels)."""
    return [name for name in BASELINES if name != "ets" or ets_available()]
