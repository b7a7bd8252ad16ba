"""The configuration of a forecasting run: data, periods, model, loss and evaluation.

Extends :class:`seq2seq.core.config.TrainingConfig`; filled from defaults < YAML < command line
like every family's. Each series is split in time: training windows end before the validation
period (the last ``valid_fraction`` before the test period), and the last ``test_fraction`` (for
published figures) is never read in training.
"""

from __future__ import annotations

from dataclasses import dataclass

from export.runtime.forecaster import NORMAL_QUANTILES, SCALINGS, TRANSFORMS
from seq2seq.core.config import TrainingConfig, option


@dataclass
class ForecastConfig(TrainingConfig):
    """Everything a forecasting run needs."""

    # --- training loop: values that suit small series ---
    learning_rate: float = option(3e-3, "peak learning rate", above=0)
    label_smoothing: float = option(0.0, "unused by forecasting", minimum=0, below=1)
    max_steps: int = option(
        3000,
        "stop after this many updates (0: no limit); small series overfit long before",
        minimum=0,
    )
    patience: int = option(8, "early stopping: evaluations without improvement (0: off)", minimum=0)
    eval_every: int = option(100, "evaluate (validation backtest) every N updates", minimum=1)
    log_every: int = option(20, "write a train line to metrics.jsonl every N updates", minimum=1)
    threads: int = option(
        1,
        "CPU threads for torch (0: torch's default). 1 by default: a small forecaster's "
        "updates take milliseconds, and on a busy machine a second thread waiting for a core "
        "made them 50 times slower",
        minimum=0,
    )
    lr_patience: int = option(
        3, "plateau: evaluations without improvement before a decay", minimum=0
    )

    # --- data ---
    data: str = option("", "CSV file: a time column and value columns (plain or .gz)")
    time_column: str = option("", "the time column (default: the first column)")
    target: str = option("", "the column to forecast (default: the first value column)")
    covariates: str = option(
        "",
        "comma-separated columns read beside the target; the model forecasts them too (their "
        "future is unknown), metrics are on the target",
    )
    series_column: str = option(
        "", "a column naming the series, for several series in one file (one global model)"
    )
    freq: str = option(
        "", "the grid: month, Q, Y, W, D, H, 15min, ... or a number (default: inferred)"
    )
    season: int = option(
        0,
        "seasonal period in steps (MASE's seasonal naive, the seasonal difference); 0: from "
        "the frequency (12 monthly, 4 quarterly, 7 daily, 24 hourly, 52 weekly, else 1)",
        minimum=0,
    )
    scaling: str = option(
        "standard", "per-series scaling, fitted on each series' training part", SCALINGS
    )
    valid_fraction: float = option(
        0.2,
        "share of each series (just before the test part) for the validation backtest",
        above=0,
        below=1,
    )
    test_fraction: float = option(
        0.0,
        "share at the end of each series that training never reads (for published backtests)",
        minimum=0,
        below=1,
    )

    # --- the model ---
    horizon: int = option(12, "steps to forecast (training and validation)", minimum=1)
    context_length: int = option(48, "steps the encoder reads before forecasting", minimum=1)
    transform: str = option(
        "level",
        "what the network reads and predicts: none (scaled values), level (relative to the "
        "window's last value) or seasonal_difference (x[t] - x[t - season]); choose on "
        "validation",
        TRANSFORMS,
    )
    cell: str = option("gru", "recurrent cell", ("lstm", "gru", "rnn"))
    hidden_size: int = option(64, "hidden size of every layer", minimum=1)
    layers: int = option(1, "stacked recurrent layers (encoder and decoder each)", minimum=1)
    dropout: float = option(0.0, "dropout between stacked layers", minimum=0, below=1)
    head: str = option(
        "autoregressive",
        "autoregressive (a decoder feeds each forecast step back in) or direct (one linear "
        "layer outputs all horizon steps)",
        ("autoregressive", "direct"),
    )
    distribution: str = option(
        "point",
        "point (loss mse or mae) or gaussian (negative log-likelihood; prediction intervals)",
        ("point", "gaussian"),
    )
    loss: str = option("mse", "point forecasts: the loss", ("mse", "mae"))
    coverage: float = option(
        0.9, "gaussian: the prediction interval's coverage (0.5, 0.8, 0.9, 0.95 or 0.99)"
    )
    teacher_forcing: float = option(
        0.0,
        "autoregressive training: the chance that a decoder step reads the true previous value "
        "instead of its own forecast (0: always its own, as at prediction time)",
        minimum=0,
        maximum=1,
    )

    # --- batching and selection ---
    batch_size: int = option(32, "training windows per batch", minimum=1)
    select_on: str = option(
        "mase",
        "the validation figure that picks best.pt: mase (rolling-origin backtest) or loss",
        ("mase", "loss"),
    )

    def check(self) -> None:
        super().check()
        if self.coverage not in NORMAL_QUANTILES:
            allowed = ", ".join(f"{c:g}" for c in NORMAL_QUANTILES)
            raise ValueError(f"coverage must be one of {allowed}, got {self.coverage:g}")
