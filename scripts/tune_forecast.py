"""Choose forecaster settings on the validation period only (never the test part).

    flock /tmp/cpu-heavy.lock python scripts/tune_forecast.py --config configs/co2-monthly.yaml \\
        --grid transform=level,seasonal_difference --grid hidden_size=32,64 --seeds 1,2

Trains one run per point of the grid (and seed) with ``--no-export``, with the config's
``test_fraction`` held out, so the test part is never read; prints each point's best validation
MASE (mean over seeds) beside seasonal naive and ETS on the same validation windows, best first.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import json
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def best_validation(run_dir: str) -> float:
    with open(os.path.join(run_dir, "metrics.jsonl"), encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    return min(r["mase"] for r in rows if r["split"] == "valid")


def validation_baselines(config) -> dict:
    """Seasonal naive and ETS over the validation windows training uses."""
    from forecast.backtest import backtest_baseline
    from forecast.baselines import BASELINES, available_baselines
    from forecast.data import DataSpec, read_series
    from forecast.task import seasonal_period, split_series

    series = read_series(config.data, DataSpec.from_config(config))
    splits = [split_series(s, config) for s in series]
    fraction = [(len(s.values) - s.valid_start) / len(s.values) for s in splits]
    period = seasonal_period(config, series)
    return {
        name: backtest_baseline(BASELINES[name], splits, config.horizon, fraction, period)[0][
            "mase"
        ]
        for name in ("seasonal_naive", "ets")
        if name in available_baselines()
    }


def main() -> int:
    from forecast.config import ForecastConfig
    from forecast.train import main as train_main
    from seq2seq.core.config import load_yaml, update_config

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--data", default=None, help="default: the config's")
    parser.add_argument("--grid", action="append", default=[], help="key=v1,v2,...")
    parser.add_argument("--seeds", default="1")
    parser.add_argument("--max-steps", type=int, default=0, help="default: the config's")
    args = parser.parse_args()
    base = update_config(ForecastConfig(), load_yaml(args.config), args.config)
    if args.data:
        base = update_config(base, {"data": args.data}, "--data")
    if not base.data:
        from forecast.train import demo_data_path

        base = update_config(base, {"data": demo_data_path()}, "demo")
    keys = [g.split("=", 1)[0] for g in args.grid]
    values = [g.split("=", 1)[1].split(",") for g in args.grid]
    print(f"validation baselines: {validation_baselines(base)}", flush=True)
    results = []
    for point in itertools.product(*values) if values else [()]:
        scores = []
        started = time.monotonic()
        for seed in args.seeds.split(","):
            with tempfile.TemporaryDirectory() as run_dir:
                flags = ["--config", args.config, "--data", base.data, "--out", run_dir]
                flags += ["--no-export", "--progress", "false", "--seed", seed]
                if args.max_steps:
                    flags += ["--max-steps", str(args.max_steps)]
                for key, value in zip(keys, point):
                    flags += ["--" + key.replace("_", "-"), value]
                with contextlib.redirect_stdout(io.StringIO()):
                    status = train_main(flags)
                if status != 0:
                    print(f"{dict(zip(keys, point))}: exit {status}", flush=True)
                    continue
                scores.append(best_validation(run_dir))
        if scores:
            mean = sum(scores) / len(scores)
            results.append((mean, dict(zip(keys, point)), scores))
            print(
                f"{dict(zip(keys, point))}: valid MASE {mean:.4f} {[round(s, 4) for s in scores]} "
                f"({time.monotonic() - started:.0f} s)",
                flush=True,
            )
    print("\nbest first:")
    for mean, point, seeds in sorted(results, key=lambda r: r[0]):
        print(f"  {mean:.4f}  {point}  {[round(s, 4) for s in seeds]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
