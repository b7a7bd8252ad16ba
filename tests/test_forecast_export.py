"""The forecaster model and its export (forecast.model, export.forecasting,
export.runtime.forecaster): the ONNX bundle forecasts what torch forecasts over several horizons
past one step, a batch forecasts each history as it would alone, int8 works, and a noiseless
seasonal pattern is learned to a small error."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from export.forecasting import export_forecaster
from export.runtime import Forecaster
from export.runtime.bundle import BundleError
from export.runtime.forecaster import SeriesScaler, WindowTransform
from forecast.config import ForecastConfig
from forecast.model import build_model
from forecast.task import SplitSeries, forecast_settings, make_windows
from forecast.torch_forecaster import TorchForecaster
from seq2seq.core.checkpoint import checkpoint_payload
from seq2seq.core.config import update_config

PATTERN = np.array([0.0, 1.0, 3.0, 2.0, 5.0, 4.0])  # one season of 6 steps


def seasonal_series(length: int, trend: float = 0.05) -> np.ndarray:
    steps = np.arange(length)
    return 10 + trend * steps + PATTERN[steps % len(PATTERN)]


def make_payload(**settings) -> dict:
    """A checkpoint payload of an untrained model with two channels and two named series."""
    values = {"hidden_size": 12, "context_length": 10, "horizon": 5, "season": 6, **settings}
    config = update_config(ForecastConfig(), values, "test")
    torch.manual_seed(0)
    model = build_model(config, channels=2)
    extras = {
        "settings": forecast_settings(config, 2, 6, ["y", "x"]),
        "scalers": {
            "a": {"shift": [10.0, 1.0], "scale": [2.0, 0.5]},
            "b": {"shift": [-3.0, 0.0], "scale": [4.0, 1.0]},
        },
    }
    return checkpoint_payload("forecasting", config, model.state_dict(), extras)


def histories() -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    lengths = [25, 8, 40, 25]  # shorter than the context, equal lengths, longer
    return [np.column_stack([seasonal_series(n), rng.normal(size=n)]) for n in lengths]


CASES = [
    {"cell": "gru"},
    {"cell": "lstm", "layers": 2, "transform": "seasonal_difference"},
    {"cell": "rnn", "distribution": "gaussian", "transform": "none", "scaling": "minmax"},
    {"cell": "lstm", "head": "direct", "distribution": "gaussian"},
]


@pytest.mark.parametrize("settings", CASES, ids=lambda s: "-".join(map(str, s.values())))
def test_onnx_forecasts_equal_torch_over_several_horizons(tmp_path, settings):
    payload = make_payload(**settings)
    export_forecaster(payload, str(tmp_path / "b"))
    bundle = Forecaster.load(str(tmp_path / "b"))
    reference = TorchForecaster.from_checkpoint(payload)
    names = ["a", "b", None, "a"]
    horizons = (1, 5) if settings.get("head") == "direct" else (1, 5, 13)
    for horizon in horizons:
        got = bundle.predict_many(histories(), horizon, names)
        expected = reference.predict_many(histories(), horizon, names)
        for g, e in zip(got, expected):
            assert g.forecast.shape == (horizon,) and g.channels.shape == (horizon, 2)
            np.testing.assert_allclose(g.channels, e.channels, rtol=1e-4, atol=1e-4)
            if settings.get("distribution") == "gaussian":
                np.testing.assert_allclose(g.lower, e.lower, rtol=1e-4, atol=1e-4)
                assert (g.lower < g.forecast).all() and (g.forecast < g.upper).all()
            else:
                assert g.lower is None


def test_a_batch_forecasts_each_history_as_alone(tmp_path):
    payload = make_payload(cell="lstm", distribution="gaussian")
    export_forecaster(payload, str(tmp_path / "b"))
    forecaster = Forecaster.load(str(tmp_path / "b"))
    names = ["a", "b", None, "a"]
    together = forecaster.predict_many(histories(), 9, names)
    for history, name, batched in zip(histories(), names, together):
        alone = forecaster.predict(history, 9, series=name)
        np.testing.assert_allclose(batched.channels, alone.channels, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(batched.upper, alone.upper, rtol=1e-5, atol=1e-5)


def test_int8_export_forecasts_close_to_float(tmp_path):
    payload = make_payload()
    export_forecaster(payload, str(tmp_path / "f"))
    manifest = export_forecaster(payload, str(tmp_path / "q"), quantize="int8")
    assert manifest["graphs"]["quantized"] == "int8"
    plain = Forecaster.load(str(tmp_path / "f")).predict_many(histories(), 6, ["a"] * 4)
    quantized = Forecaster.load(str(tmp_path / "q")).predict_many(histories(), 6, ["a"] * 4)
    for p, q in zip(plain, quantized):
        np.testing.assert_allclose(p.forecast, q.forecast, atol=0.2)


def test_the_runtime_refuses_bad_requests(tmp_path):
    export_forecaster(make_payload(head="direct"), str(tmp_path / "b"))
    forecaster = Forecaster.load(str(tmp_path / "b"))
    with pytest.raises(ValueError, match="direct head of 5 steps"):
        forecaster.predict(histories()[0], 6)
    with pytest.raises(ValueError, match=r"\[time\] or \[time, 2\]"):
        forecaster.predict(np.zeros((20, 3)), 2)
    with pytest.raises(ValueError, match="NaN"):
        forecaster.predict(np.full((20, 2), np.nan), 2)
    with pytest.raises(BundleError, match="no such bundle"):
        Forecaster.load(str(tmp_path / "missing"))


def test_a_noiseless_seasonal_pattern_is_learned():
    """300 updates on a noiseless trend + season: forecasts 12 steps (two seasons) ahead
    within a small error, ten times better than the naive forecast."""
    config = update_config(
        ForecastConfig(),
        {"hidden_size": 24, "context_length": 12, "horizon": 12, "season": 6, "transform": "level"},
        "test",
    )
    values = seasonal_series(160)[:, None]
    scaler = SeriesScaler.fit(values[:140], "standard")
    split = SplitSeries("", values, 140)
    transform = WindowTransform("level", 6)
    inputs, targets = make_windows(split, scaler.transform(values), transform, config, 140)
    torch.manual_seed(0)
    model = build_model(config, 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, y = torch.tensor(inputs, dtype=torch.float32), torch.tensor(targets, dtype=torch.float32)
    for _ in range(300):
        mean, _ = model(x, 12)
        loss = ((mean - y) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    settings = forecast_settings(config, 1, 6, ["y"])
    forecaster = TorchForecaster(model.eval(), settings, {"": scaler.state()})
    forecast = forecaster.predict(values[:148], 12).forecast
    error = np.abs(forecast - values[148:160, 0]).mean()
    naive_error = np.abs(values[147, 0] - values[148:160, 0]).mean()
    assert error < 0.15 and error < naive_error / 10
