"""Backtest a forecaster bundle: ``python -m forecast.evaluate --bundle DIR --data F.csv``.

Prints JSON: a rolling-origin backtest over the last ``--fraction`` of each series (origins every
half horizon by default), with MASE (against the in-sample seasonal naive of the model's
seasonal period), sMAPE, MAE, RMSE and, for a probabilistic model, interval coverage, for the
model and, over the same windows, for the naive, seasonal-naive and drift baselines, and ETS
when statsmodels is installed. ``--plot FILE.png`` draws the history, the forecasts and their
intervals. Runs on the torch-free runtime (matplotlib only for ``--plot``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from seq2seq.core.cli import add_runtime_arguments, run_command


def main(argv=None) -> int:
    from forecast.data import add_data_arguments

    parser = argparse.ArgumentParser(
        prog="python -m forecast.evaluate",
        description="Rolling-origin backtest of a forecaster bundle beside naive, "
        "seasonal-naive, drift and ETS forecasts (JSON to stdout).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--bundle", required=True, help="forecaster bundle directory")
    parser.add_argument("--data", required=True, help="CSV file (plain or .gz)")
    parser.add_argument("--horizon", type=int, default=None, help="default: the model's")
    parser.add_argument(
        "--fraction", type=float, default=0.2, help="the backtest period: the last share"
    )
    parser.add_argument(
        "--every", type=int, default=0, help="steps between origins (0: half the horizon)"
    )
    parser.add_argument("--season", type=int, default=None, help="default: the model's period")
    parser.add_argument("--no-ets", action="store_true", help="skip the ETS baseline")
    parser.add_argument("--plot", default=None, metavar="FILE.png", help="draw the backtest")
    add_runtime_arguments(parser)
    add_data_arguments(parser)
    args = parser.parse_args(argv)
    return run_command(lambda: evaluate(args))


def evaluate(args: argparse.Namespace) -> int:
    from export.runtime import Forecaster
    from forecast.backtest import backtest_origins, compare
    from forecast.baselines import available_baselines
    from forecast.data import describe, read_series, spec_from_arguments

    if not 0 < args.fraction < 1:
        raise ValueError(f"--fraction must be in (0, 1), got {args.fraction}")
    forecaster = Forecaster.load(args.bundle, device=args.device, threads=args.threads)
    series = read_series(args.data, spec_from_arguments(args, forecaster.manifest))
    horizon = args.horizon or forecaster.model_horizon
    period = args.season or forecaster.transform.period
    baselines = [b for b in available_baselines() if not (args.no_ets and b == "ets")]
    started = time.monotonic()
    results = compare(forecaster, series, horizon, args.fraction, period, baselines, args.every)
    origins = sum(
        len(backtest_origins(len(s.values), horizon, args.fraction, args.every)) for s in series
    )
    output = {
        "bundle": args.bundle,
        "data": describe(args.data, series),
        "horizon": horizon,
        "seasonal_period": period,
        "backtest": {
            "fraction": args.fraction,
            "every": args.every or max(1, horizon // 2),
            "origins": origins,
        },
        "seconds": round(time.monotonic() - started, 2),
        **results,
    }
    if args.plot:
        from forecast.plots import plot_backtest

        plot_backtest(forecaster, series, horizon, args.fraction, args.every, args.plot)
        output["plot"] = args.plot
    print(json.dumps(output, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
