"""The forecasting commands end to end: ``forecast.train`` (a tiny run, its bundle, a resumed run
that matches an uninterrupted one, exported with ``python -m export``), and
``forecast.evaluate`` and ``forecast.predict`` in processes where torch cannot be imported."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

from export.runtime import Forecaster
from forecast.train import main as train_main

FLAGS = [
    "--time-column", "month",
    "--target", "sales",
    "--covariates", "price",
    "--horizon", "6",
    "--context-length", "12",
    "--hidden-size", "8",
    "--batch-size", "8",
    "--eval-every", "5",
    "--log-every", "1",
    "--distribution", "gaussian",
    "--progress", "false",
]  # fmt: skip


def write_csv(path, months: int = 96, series: tuple[str, ...] = ("",)) -> None:
    rng = np.random.default_rng(0)
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow((["shop"] if series != ("",) else []) + ["month", "sales", "price"])
        for offset, name in enumerate(series):
            for k in range(months):
                sales = 100 + 10 * offset + k + 8 * np.sin(2 * np.pi * k / 12) + rng.normal()
                cell = "" if k == 30 else f"{sales:.3f}"  # one missing value
                month = f"{2010 + k // 12}-{k % 12 + 1:02d}"
                row = [month, cell, f"{5 + np.cos(k / 5):.3f}"]
                writer.writerow(([name] if series != ("",) else []) + row)


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "sales.csv"
    write_csv(path)
    return str(path)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, data_file):
    run_dir = tmp_path_factory.mktemp("runs") / "full"
    assert (
        train_main(["--data", data_file, "--out", str(run_dir), "--max-steps", "12", *FLAGS]) == 0
    )
    return run_dir


def read_metrics(run_dir) -> list[dict]:
    with open(os.path.join(run_dir, "metrics.jsonl"), encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def losses(run_dir) -> dict:
    keep = ("loss", "nll", "lr", "mase", "smape", "epoch")
    return {
        (r["split"], r["step"]): {k: r[k] for k in keep if k in r} for r in read_metrics(run_dir)
    }


@pytest.fixture(scope="module")
def no_torch_env(tmp_path_factory) -> dict:
    fake = tmp_path_factory.mktemp("fake_site")
    (fake / "torch").mkdir()
    (fake / "torch" / "__init__.py").write_text(
        'raise ImportError("torch is not installed (test: the runtime must not need it)")\n',
        encoding="utf-8",
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(fake), str(ROOT)])
    return env


def run_python(args, env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], env=env, cwd=ROOT, text=True, capture_output=True, timeout=120
    )


def test_training_writes_a_run_and_a_bundle(trained_run, capsys):
    for name in ("config.yaml", "metrics.jsonl", "curves.png", "last.pt", "best.pt"):
        assert (trained_run / name).exists(), name
    valid = [r for r in read_metrics(trained_run) if r["split"] == "valid"]
    assert [r["step"] for r in valid] == [5, 10, 12]
    assert all({"mase", "smape", "loss", "coverage"} <= set(r) for r in valid)
    forecaster = Forecaster.load(str(trained_run / "bundle"))
    assert forecaster.probabilistic and forecaster.settings["channel_names"] == ["sales", "price"]


def test_resume_gives_the_same_losses_as_an_uninterrupted_run(trained_run, tmp_path, data_file):
    run_dir = tmp_path / "resumed"
    common = ["--out", str(run_dir), "--no-export"]
    assert train_main(["--data", data_file, "--max-steps", "5", *common, *FLAGS]) == 0
    assert train_main(["--resume", "--max-steps", "12", *common]) == 0
    assert losses(run_dir) == losses(trained_run)


def test_the_exporter_command_writes_the_same_forecasts(trained_run, tmp_path, data_file):
    from export.__main__ import main as export_main

    out = tmp_path / "again"
    assert export_main(["--checkpoint", str(trained_run / "best.pt"), "--out", str(out)]) == 0
    history = np.column_stack([np.linspace(100, 150, 40), np.full(40, 5.0)])
    first = Forecaster.load(str(trained_run / "bundle")).predict(history, 7)
    second = Forecaster.load(str(out)).predict(history, 7)
    np.testing.assert_allclose(first.forecast, second.forecast, rtol=1e-6)


def test_predict_and_evaluate_run_without_torch(trained_run, data_file, no_torch_env):
    bundle = str(trained_run / "bundle")
    result = run_python(
        ["-m", "forecast.predict", "--bundle", bundle, "--data", data_file, "--horizon", "8"],
        no_torch_env,
    )
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["time"] for r in rows[:2]] == ["2018-01", "2018-02"] and len(rows) == 8
    assert all(float(r["lower"]) < float(r["forecast"]) < float(r["upper"]) for r in rows)

    result = run_python(
        ["-m", "forecast.evaluate", "--bundle", bundle, "--data", data_file], no_torch_env
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert {"model", "naive", "seasonal_naive", "drift"} <= set(report)
    assert report["backtest"] == {"fraction": 0.2, "every": 3, "origins": 5}
    assert 0 <= report["model"]["coverage"] <= 1
    # the baselines are scored over the same windows as forecast.backtest scores them
    from forecast.backtest import backtest_baseline
    from forecast.baselines import seasonal_naive
    from forecast.data import DataSpec, read_series

    series = read_series(data_file, DataSpec("month", "sales", "price"))
    expected, _ = backtest_baseline(seasonal_naive, series, 6, 0.2, 12)
    assert report["seasonal_naive"]["mase"] == pytest.approx(expected["mase"])


def test_evaluate_includes_ets_and_draws_a_plot(trained_run, data_file, tmp_path, capsys):
    pytest.importorskip("statsmodels")
    from forecast.evaluate import main as evaluate_main

    plot = tmp_path / "backtest.png"
    bundle = str(trained_run / "bundle")
    assert evaluate_main(["--bundle", bundle, "--data", data_file, "--plot", str(plot)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ets"]["mase"] < report["naive"]["mase"] and plot.stat().st_size > 1000


def test_commands_report_bad_input_in_one_line(trained_run, tmp_path, no_torch_env):
    bad = tmp_path / "bad.csv"
    bad.write_text("month,sales,price\n2020-01,1,2\n2020-02,lots,2\n", encoding="utf-8")
    bundle = str(trained_run / "bundle")
    result = run_python(
        ["-m", "forecast.predict", "--bundle", bundle, "--data", str(bad)], no_torch_env
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: {bad}: line 3: the value 'lots' in column 'sales' is not a number "
        "(leave the cell empty for a missing value)"
    )
    result = run_python(
        ["-m", "forecast.evaluate", "--bundle", str(tmp_path), "--data", str(bad)], no_torch_env
    )
    assert result.returncode == 2 and "not a bundle" in result.stderr
    assert train_main(["--data", str(bad), "--out", str(tmp_path / "r"), *FLAGS]) == 2


def test_several_series_train_one_global_model(tmp_path):
    data = tmp_path / "shops.csv"
    write_csv(data, months=60, series=("north", "south"))
    run_dir = tmp_path / "run"
    flags = [*FLAGS, "--series-column", "shop", "--context-length", "8"]
    assert train_main(["--data", str(data), "--out", str(run_dir), "--max-steps", "6", *flags]) == 0
    forecaster = Forecaster.load(str(run_dir / "bundle"))
    assert sorted(forecaster.scalers) == ["north", "south"]
    from forecast.predict import main as predict_main

    capture = io.StringIO()
    stdout, sys.stdout = sys.stdout, capture
    try:
        assert predict_main(["--bundle", str(run_dir / "bundle"), "--data", str(data)]) == 0
    finally:
        sys.stdout = stdout
    rows = list(csv.DictReader(io.StringIO(capture.getvalue())))
    assert [r["series"] for r in rows] == ["north"] * 6 + ["south"] * 6


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_two_processes_take_the_updates_of_one_process_accumulating_two(data_file, tmp_path):
    """torchrun: 2 ranks of batch 8 give the losses and weights of 1 process accumulating 2."""
    from seq2seq.core.checkpoint import load_checkpoint

    two, one = tmp_path / "two", tmp_path / "one"
    common = ["--data", data_file, "--max-steps", "6", "--no-export", *FLAGS]
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    done = subprocess.run(
        [*launch, "-m", "forecast.train", "--out", str(two), *common],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert train_main(["--out", str(one), "--accumulate", "2", *common]) == 0
    for a, b in zip(read_metrics(two), read_metrics(one), strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
    a, b = load_checkpoint(str(two / "last.pt"))["model"], load_checkpoint(str(one / "last.pt"))
    for name, tensor in a.items():
        np.testing.assert_allclose(tensor.numpy(), b["model"][name].numpy(), rtol=1e-4, atol=1e-5)
