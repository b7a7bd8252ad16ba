"""Forecasting benchmark: the toolkit against the baselines, and ONNX against torch for speed.

    flock /tmp/cpu-heavy.lock python scripts/bench_forecast.py --out runs/bench-forecast

In one run, for monthly CO2 (configs/co2-monthly.yaml, H=12) and yearly sunspots
(configs/sunspots.yaml, H=11), both shipped in forecast/demo_data/: trains the toolkit's
forecaster with the config (which holds out the last 20%; settings were chosen on the 20% before
it), then backtests on the last 20% with rolling origins every half horizon: the model through
its ONNX bundle, naive, seasonal naive, drift, ETS (Holt-Winters, additive trend and season) and
a SARIMA / AR model from statsmodels. Prints MASE and sMAPE per series, the largest ONNX-torch
difference, and prediction speed (series per second, one history per call and 256 per call) of
the ONNX Forecaster and of the torch model through the same loop, one thread each.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import sys
import time
import warnings

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

SERIES = {
    "co2": ("co2-monthly.csv", "configs/co2-monthly.yaml", "co2, monthly, H=12"),
    "sunspots": ("sunspots.csv", "configs/sunspots.yaml", "sunspots, yearly, H=11"),
}
STATISTICAL = {  # (order, seasonal order) of the statsmodels SARIMAX fitted at every origin
    "co2": ((1, 1, 1), (0, 1, 1, 12), "SARIMA(1,1,1)(0,1,1)12"),
    "sunspots": ((9, 0, 0), (0, 0, 0, 0), "AR(9)"),
}


def cpu_description() -> str:
    model, flags = platform.processor() or "unknown CPU", set()
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    wanted = ["avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16"]
    return f"{model}, {os.cpu_count()} cores, flags: {' '.join(f for f in wanted if f in flags)}"


def sarima(order, seasonal):
    def forecast(history, horizon, period):
        from statsmodels.tsa.statespace.sarimax import SARIMAX

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fitted = SARIMAX(
                history,
                order=order,
                seasonal_order=seasonal,
                trend="c" if not any(order[1:2] + seasonal[1:2]) else None,
            ).fit(disp=False)
            return np.asarray(fitted.forecast(horizon), dtype=np.float64)

    return forecast


DARTS_WORKER = r"""
import json, sys, time, warnings
import numpy as np
warnings.simplefilter("ignore")
from darts import TimeSeries
from darts.models import RNNModel
request = json.load(sys.stdin)
values = np.asarray(request["values"], dtype=np.float32)
fit_end, horizon, context = request["fit_end"], request["horizon"], request["context"]
series = TimeSeries.from_values(values)
from darts.dataprocessing.transformers import Scaler
scaler = Scaler().fit(series[:fit_end])
scaled = scaler.transform(series)
model = RNNModel(model="GRU", input_chunk_length=context, output_chunk_length=1,
                 training_length=context + horizon, hidden_dim=64, n_rnn_layers=1,
                 n_epochs=request["epochs"], batch_size=32, random_state=1,
                 pl_trainer_kwargs={"accelerator": "cpu", "enable_progress_bar": False,
                                    "logger": False, "enable_model_summary": False})
started = time.perf_counter()
model.fit(scaled[:fit_end], verbose=False)
fit_seconds = time.perf_counter() - started
forecasts = []
for origin in request["origins"]:
    f = model.predict(horizon, series=scaled[:origin], verbose=False)
    forecasts.append(scaler.inverse_transform(f).values()[:, 0].tolist())
def rate(histories):
    model.predict(horizon, series=histories, verbose=False)
    calls, begun = 0, time.perf_counter()
    while time.perf_counter() - begun < 3.0:
        model.predict(horizon, series=histories, verbose=False)
        calls += 1
    return calls * len(histories) / (time.perf_counter() - begun)
histories = [scaled[:o] for o in request["origins"]]
batch = [histories[k % len(histories)] for k in range(256)]
print(json.dumps({"forecasts": forecasts, "fit_seconds": fit_seconds,
                  "one": rate(histories[:1]), "batch_256": rate(batch)}))
"""


def run_darts(python: str, values, fit_end: int, origins, horizon: int, context: int) -> dict:
    """darts RNNModel (GRU, output chunk 1: autoregressive) at the toolkit's context and
    horizon, fitted on the same steps the toolkit saw, in its own Python environment."""
    import subprocess

    request = {
        "values": [float(v) for v in values],
        "fit_end": fit_end,
        "origins": list(origins),
        "horizon": horizon,
        "context": context,
        "epochs": 60,
    }
    done = subprocess.run(
        [python, "-c", DARTS_WORKER],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if done.returncode != 0:
        raise RuntimeError(f"darts failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def speed(forecaster, histories, horizon: int, seconds: float = 3.0) -> float:
    """Series per second of ``forecaster.predict_many`` over ``histories``."""
    forecaster.predict_many(histories, horizon)  # warm-up
    calls, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        forecaster.predict_many(histories, horizon)
        calls += 1
    return calls * len(histories) / (time.perf_counter() - started)


def run_series(name: str, out_dir: str, minutes: float, darts_python: str | None) -> dict:
    import torch

    from export.runtime import Forecaster
    from forecast.backtest import backtest_baseline, compare
    from forecast.baselines import available_baselines
    from forecast.config import ForecastConfig
    from forecast.data import DataSpec, read_series
    from forecast.task import seasonal_period
    from forecast.torch_forecaster import TorchForecaster
    from forecast.train import demo_data_path
    from forecast.train import main as train_main
    from seq2seq.core.checkpoint import load_checkpoint
    from seq2seq.core.config import load_yaml, update_config

    file_name, config_path, label = SERIES[name]
    data = demo_data_path(file_name)
    config_file = os.path.join(ROOT, config_path)
    config = update_config(ForecastConfig(), {**load_yaml(config_file), "data": data}, config_path)
    run_dir = os.path.join(out_dir, name)
    flags = ["--config", config_file, "--data", data, "--out", run_dir, "--progress", "false"]
    if minutes:
        flags += ["--max-minutes", str(minutes)]
    started = time.monotonic()
    with contextlib.redirect_stdout(io.StringIO()) as log:
        status = train_main(flags)
    if status != 0:
        raise RuntimeError(f"training {name} failed:\n{log.getvalue()}")
    train_seconds = time.monotonic() - started
    series = read_series(data, DataSpec.from_config(config))
    period = seasonal_period(config, series)
    fraction, horizon = config.test_fraction, config.horizon
    onnx = Forecaster.load(os.path.join(run_dir, "bundle"), threads=1)
    torch.set_num_threads(1)
    reference = TorchForecaster.from_checkpoint(load_checkpoint(os.path.join(run_dir, "best.pt")))
    results = compare(onnx, series, horizon, fraction, period, available_baselines())
    order, seasonal, statistical = STATISTICAL[name]
    started = time.monotonic()
    means, _ = backtest_baseline(sarima(order, seasonal), series, horizon, fraction, period)
    results[statistical] = {**means, "seconds": round(time.monotonic() - started, 1)}
    torch_results = compare(reference, series, horizon, fraction, period, [])
    history = series[0].values
    origins = range(len(history) - int(round(fraction * len(history))), len(history) - horizon + 1)
    histories = [history[:o] for o in origins]
    difference = max(
        float(np.abs(a.forecast - b.forecast).max())
        for a, b in zip(
            onnx.predict_many(histories, horizon), reference.predict_many(histories, horizon)
        )
    )
    batch = [histories[k % len(histories)] for k in range(256)]
    darts = None
    if darts_python:
        from forecast.backtest import scores, series_windows

        target = series[0].values[:, 0]
        windows = series_windows(target, horizon, fraction, period)
        fit_end = len(target) - int(round(fraction * len(target)))
        darts = run_darts(
            darts_python, target, fit_end, windows.origins, horizon, config.context_length
        )
        forecasts = np.asarray(darts.pop("forecasts"))
        darts_scores = scores(windows.actual, forecasts, windows.scale)
        results["darts RNNModel"] = {**darts_scores, "fit_seconds": darts["fit_seconds"]}
    rates = {
        "onnx_one": round(speed(onnx, histories[:1], horizon)),
        "torch_one": round(speed(reference, histories[:1], horizon)),
        "onnx_batch_256": round(speed(onnx, batch, horizon)),
        "torch_batch_256": round(speed(reference, batch, horizon)),
    }
    if darts:
        rates.update(darts_one=round(darts["one"], 1), darts_batch_256=round(darts["batch_256"], 1))
    return {
        "label": label,
        "train_seconds": round(train_seconds, 1),
        "seasonal_period": period,
        "mase": {k: round(v["mase"], 3) for k, v in results.items()},
        "smape": {k: round(v["smape"], 3) for k, v in results.items()},
        "torch_model_mase": round(torch_results["model"]["mase"], 3),
        "onnx_torch_max_difference": difference,
        "series_per_second": rates,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join("runs", "bench-forecast"))
    parser.add_argument("--series", default="co2,sunspots")
    parser.add_argument("--minutes", type=float, default=0, help="training budget (0: config)")
    parser.add_argument(
        "--darts-python",
        default=None,
        help="a Python with darts installed (its own environment, never a dependency): adds "
        "darts RNNModel at the same context and horizon",
    )
    args = parser.parse_args()
    print(f"CPU: {cpu_description()}", flush=True)
    print(f"command: {' '.join(sys.argv)}", flush=True)
    report = {}
    for name in args.series.split(","):
        report[name] = run_series(name, args.out, args.minutes, args.darts_python)
        print(json.dumps({name: report[name]}, indent=2), flush=True)
    methods = list(next(iter(report.values()))["mase"])
    print("\n| series | " + " | ".join(methods) + " |")
    print("|---|" + "---:|" * len(methods))
    for r in report.values():
        cells = [f"{r['mase'][m]:.3f} / {r['smape'][m]:.2f}" for m in r["mase"]]
        print(f"| {r['label']} | " + " | ".join(cells) + " |")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "report.json"), "w", encoding="utf-8") as f:
        json.dump({"cpu": cpu_description(), "series": report}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
