"""Forecast the steps after a series: ``python -m forecast.predict --bundle DIR --data F.csv
--horizon H``.

Writes CSV to stdout: ``time,forecast`` (plus ``lower,upper`` for a probabilistic model; a
leading ``series`` column for a file of several series), the ``H`` steps after the last row of
each series' history. Reads the columns the bundle was trained on unless flags say otherwise.
Runs on the base install (no torch).
"""

from __future__ import annotations

import argparse
import csv
import sys

from seq2seq.core.cli import add_runtime_arguments, run_command


def main(argv=None) -> int:
    from forecast.data import add_data_arguments

    parser = argparse.ArgumentParser(
        prog="python -m forecast.predict",
        description="Forecast the steps after the last row of each series (CSV to stdout).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--bundle", required=True, help="forecaster bundle directory")
    parser.add_argument("--data", required=True, help="CSV file with the history")
    parser.add_argument("--horizon", type=int, default=None, help="default: the model's")
    add_runtime_arguments(parser)
    add_data_arguments(parser)
    args = parser.parse_args(argv)
    return run_command(lambda: predict(args))


def predict(args: argparse.Namespace) -> int:
    from export.runtime import Forecaster
    from forecast.data import read_series, spec_from_arguments

    forecaster = Forecaster.load(args.bundle, device=args.device, threads=args.threads)
    spec = spec_from_arguments(args, forecaster.manifest)
    series = read_series(args.data, spec)
    horizon = args.horizon or forecaster.model_horizon
    forecasts = forecaster.predict_many(
        [s.values for s in series], horizon, [s.name or None for s in series]
    )
    writer = csv.writer(sys.stdout, lineterminator="\n")
    header = ["time", "forecast"] + (["lower", "upper"] if forecaster.probabilistic else [])
    several = bool(spec.series_column)
    writer.writerow((["series"] if several else []) + header)
    for s, f in zip(series, forecasts):
        for k, time in enumerate(s.axis.after(s.last, horizon)):
            row = [time, f"{f.forecast[k]:.6g}"]
            if f.lower is not None:
                row += [f"{f.lower[k]:.6g}", f"{f.upper[k]:.6g}"]
            writer.writerow(([s.name] if several else []) + row)
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
