"""The backtest plot of ``forecast.evaluate --plot``: history, forecasts and their intervals."""

from __future__ import annotations

import numpy as np

from forecast.backtest import backtest_model

MAX_PANELS = 4


def plot_backtest(forecaster, series: list, horizon: int, fraction: float, every, path: str):
    """Draw the target of (at most four) series with the backtest's forecasts, one line per
    origin, and their prediction intervals (a probabilistic model) into ``path``."""
    try:
        import matplotlib
    except ImportError:
        raise ValueError("--plot needs matplotlib: pip install matplotlib") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = series[:MAX_PANELS]
    _, _, forecasts = backtest_model(
        forecaster.predict_many, shown, horizon, fraction, forecaster.transform.period, every
    )
    figure, axes = plt.subplots(len(shown), 1, figsize=(10, 3.2 * len(shown)), squeeze=False)
    for axis, s, mine in zip(axes[:, 0], shown, forecasts):
        target = s.values[:, 0]
        start = len(target) - int(round(fraction * len(target)))
        first = max(0, start - 3 * horizon)
        axis.plot(
            np.arange(first, len(target)), target[first:], color="black", lw=1, label="actual"
        )
        origins = range(start, len(target) - horizon + 1, every or max(1, horizon // 2))
        for k, (origin, f) in enumerate(zip(origins, mine)):
            steps = np.arange(origin, origin + horizon)
            axis.plot(
                steps, f.forecast, color="tab:blue", lw=1, label="forecast" if k == 0 else None
            )
            if f.lower is not None:
                axis.fill_between(steps, f.lower, f.upper, color="tab:blue", alpha=0.12)
        axis.axvline(start, color="grey", ls=":", lw=1)
        axis.set_title(s.name or "backtest")
        axis.set_xlabel("step")
        axis.legend(loc="upper left")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
