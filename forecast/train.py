"""Train a recurrent forecaster: ``python -m forecast.train``.

With no arguments it trains on a monthly CO2 series shipped with the package (public domain,
from statsmodels; forecast/demo_data/README.md), holding out its last 20%, exports the model,
and prints its rolling-origin backtest on that held-out part beside the baselines. With your
own data::

    python -m forecast.train --data sales.csv --target units --horizon 12 --out runs/sales
    python -m forecast.train --config configs/co2-monthly.yaml --out runs/co2 --max-minutes 2

``--resume`` continues a run exactly where it stopped. The flags common to every family's
``train`` come from :class:`seq2seq.core.cli.TrainCommand`.
"""

from __future__ import annotations

import os
import sys

from seq2seq.core.cli import TrainCommand

DEMO_OUT = os.path.join("runs", "demo-forecast")
DEMO_DATA = "co2-monthly.csv"


def demo_data_path(name: str = DEMO_DATA) -> str:
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "demo_data", name)


def demo_settings() -> dict:
    from seq2seq.core.config import load_yaml

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    shipped = os.path.join(root, "configs", "co2-monthly.yaml")
    settings = load_yaml(shipped) if os.path.exists(shipped) else {}
    return {**settings, "data": demo_data_path(), "max_minutes": 1.5}


def read_training_series(config, log):
    """The series of ``config.data`` and the names of their channels."""
    from forecast.data import DataSpec, describe, read_series

    if not config.data:
        raise ValueError("--data F.csv is required (a time column and value columns)")
    series = read_series(config.data, DataSpec.from_config(config))
    log(f"data: {describe(config.data, series)}")
    channels = [config.target or "target"] + [
        c.strip() for c in config.covariates.split(",") if c.strip()
    ]
    return series, channels


def make_task(config, run_dir: str, device, log):
    from forecast.model import build_model
    from forecast.task import ForecastTask

    series, channels = read_training_series(config, log)
    model = build_model(config, len(channels)).to(device)
    parameters = sum(p.numel() for p in model.parameters())
    log(
        f"model: {config.layers}-layer {config.cell}, hidden {config.hidden_size}, "
        f"{config.head} head, {config.distribution} output, {parameters:,} parameters, on {device}"
    )
    return ForecastTask(config, model, series, channels, log=log)


def report(config, run_dir: str, task, log) -> int:
    """Export best.pt to RUN_DIR/bundle and print the ONNX model's backtest beside the
    baselines: on the held-out test part when there is one, else on the validation part."""
    from export.forecasting import export_forecaster
    from export.runtime import Forecaster
    from forecast.backtest import compare, format_table
    from forecast.baselines import available_baselines
    from forecast.data import DataSpec, read_series
    from seq2seq.core.checkpoint import load_checkpoint

    bundle = os.path.join(run_dir, "bundle")
    export_forecaster(load_checkpoint(os.path.join(run_dir, "best.pt")), bundle)
    forecaster = Forecaster.load(bundle)
    series = read_series(config.data, DataSpec.from_config(config))
    if config.test_fraction > 0:
        part, fraction = "held-out test part", config.test_fraction
    else:
        part, fraction = "validation part", config.valid_fraction
    results = compare(
        forecaster, series, config.horizon, fraction, task.period, available_baselines()
    )
    log(
        f"\nbacktest on the {part} (last {fraction:.0%} of each series, horizon "
        f"{config.horizon}, origins every {max(1, config.horizon // 2)} steps, MASE against "
        f"seasonal naive of period {task.period}; model = best.pt through the ONNX bundle):"
    )
    log(format_table(results))
    log(f"\nrun directory: {run_dir} (config.yaml, metrics.jsonl, curves.png, last.pt, best.pt)")
    log(f"bundle:        {bundle}")
    log(
        f"try:           python -m forecast.predict --bundle {bundle} --data {config.data} "
        f"--horizon {config.horizon}"
    )
    return 0


def forecast_command():
    from forecast.config import ForecastConfig

    return TrainCommand(
        prog="python -m forecast.train",
        description="Train a recurrent time-series forecaster on a CSV file, export it to an "
        "ONNX bundle, and print its rolling-origin backtest beside naive, seasonal-naive, "
        "drift and (with statsmodels) ETS forecasts. With no arguments: the built-in demo.",
        config_class=ForecastConfig,
        data_keys=("data",),
        demo_out=DEMO_OUT,
        demo_settings=demo_settings,
        demo_message="demo: forecasting monthly CO2 at Mauna Loa (shipped with the package) "
        "12 months ahead; training for {minutes} minutes into {run_dir}",
        make_task=make_task,
        report=report,
    )


def main(argv=None) -> int:
    return forecast_command().main(argv)


if __name__ == "__main__":
    sys.exit(main())
