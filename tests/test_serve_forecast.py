"""POST /v1/forecast against a real service (in a Python without torch): the answers equal
``Forecaster.predict_many``, alone and when concurrent requests share batches, and bad requests
get 404, 413 or 422 naming the field."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from serve_helpers import Service

from export.forecasting import export_forecaster
from export.runtime import Forecaster
from forecast.config import ForecastConfig
from forecast.model import build_model
from forecast.task import forecast_settings
from seq2seq.core.checkpoint import checkpoint_payload
from seq2seq.core.config import update_config

MAX_QUEUE = 16


def payload(**settings) -> dict:
    """An untrained one-channel forecaster with a stored scaler for series "a"."""
    values = {"hidden_size": 12, "context_length": 10, "horizon": 5, "season": 6, **settings}
    config = update_config(ForecastConfig(), values, "test")
    torch.manual_seed(0)
    model = build_model(config, channels=1)
    extras = {
        "settings": forecast_settings(config, 1, 6, ["y"]),
        "scalers": {"a": {"shift": [10.0], "scale": [2.0]}},
    }
    return checkpoint_payload("forecasting", config, model.state_dict(), extras)


def history(length: int, phase: float = 0.0) -> list[float]:
    steps = np.arange(length)
    return list(10 + 0.05 * steps + np.sin(steps * 2 * np.pi / 6 + phase))


@pytest.fixture(scope="module")
def bundles(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("forecasters")
    export_forecaster(payload(), str(root / "point"))
    export_forecaster(payload(distribution="gaussian", head="direct"), str(root / "direct"))
    return {"point": str(root / "point"), "direct": str(root / "direct")}


@pytest.fixture(scope="module")
def service(tmp_path_factory, bundles, translation_bundle):
    args = ["--bundle", f"point={bundles['point']}", "--bundle", f"direct={bundles['direct']}"]
    args += ["--bundle", f"tr={translation_bundle}", "--max-queue", str(MAX_QUEUE)]
    args += ["--max-batch-size", "8", "--max-wait-ms", "300"]
    service = Service.start(tmp_path_factory.mktemp("serve_forecast"), args)
    yield service
    assert service.stop() == 0


def expected(bundle: str, histories, horizon: int, names=None) -> list[dict]:
    found = Forecaster.load(bundle).predict_many(histories, horizon, names)
    return [
        {
            "forecast": pytest.approx(list(f.forecast), abs=1e-5),
            "lower": None if f.lower is None else pytest.approx(list(f.lower), abs=1e-5),
            "upper": None if f.upper is None else pytest.approx(list(f.upper), abs=1e-5),
        }
        for f in found
    ]


def test_answers_equal_the_runtime(service, bundles):
    histories = [history(30), history(8, 1.0), history(45, 2.0)]
    names = ["a", None, "b"]
    for horizon in (1, 13):
        body = {"model": "point", "horizon": horizon, "histories": histories, "names": names}
        status, _, answer = service.post("/v1/forecast", body)
        assert status == 200, answer
        assert answer["forecasts"] == expected(bundles["point"], histories, horizon, names)
    body = {"model": "direct", "horizon": 4, "history": histories[0], "name": "a"}
    status, _, answer = service.post("/v1/forecast", body)
    assert status == 200, answer
    assert answer["forecasts"] == expected(bundles["direct"], histories[:1], 4, ["a"])
    assert all(
        lo < f < hi
        for lo, f, hi in zip(*(answer["forecasts"][0][k] for k in ("lower", "forecast", "upper")))
    )


def test_concurrent_requests_share_batches_and_equal_the_runtime_alone(service, bundles):
    histories = [history(20 + 3 * i, i / 2) for i in range(6)]

    def batches() -> float:
        return service.metric("serve_batch_rows_count", model="point")

    before = batches()
    # a batch of two rows first: the scheduler then holds the next batch open up to 300 ms
    body = {"model": "point", "horizon": 3, "histories": histories[:2]}
    assert service.post("/v1/forecast", body)[0] == 200
    with ThreadPoolExecutor(len(histories)) as pool:
        answers = list(
            pool.map(
                lambda h: service.post(
                    "/v1/forecast", {"model": "point", "horizon": 6, "history": h}
                ),
                histories,
            )
        )
    for h, (status, _, answer) in zip(histories, answers):
        assert status == 200, answer
        assert answer["forecasts"] == expected(bundles["point"], [h], 6)
    assert batches() - before < 1 + len(histories)  # some requests shared a batch


@pytest.mark.parametrize(
    "body, field",
    [
        ({"history": [1.0, 2.0]}, "horizon"),
        ({"horizon": 0, "history": [1.0, 2.0]}, "horizon"),
        ({"horizon": "3", "history": [1.0, 2.0]}, "horizon"),
        ({"horizon": 3}, "history"),
        ({"horizon": 3, "history": "1 2 3"}, "history"),
        ({"horizon": 3, "history": [1.0, "2"]}, "history"),
        ({"horizon": 3, "history": [[1.0, 2.0], [3.0, 4.0]]}, "history"),
        ({"horizon": 3, "histories": []}, "histories"),
        ({"horizon": 3, "histories": [[1.0], [2.0, True]]}, "histories[1]"),
        ({"horizon": 3, "histories": [[1.0]], "names": ["a", "b"]}, "names"),
        ({"horizon": 3, "history": [1.0], "beam": 2}, "beam"),
    ],
)
def test_bad_fields_are_422_naming_the_field(service, body, field):
    status, _, answer = service.post("/v1/forecast", {"model": "point", **body})
    assert status == 422, answer
    assert answer["field"] == field and field.split("[")[0] in answer["error"]


def test_direct_head_limit_unknown_model_and_too_many_series(service):
    status, _, answer = service.post(
        "/v1/forecast", {"model": "direct", "horizon": 6, "history": [1.0]}
    )
    assert status == 422 and "at most 5" in answer["error"]
    status, _, answer = service.post(
        "/v1/forecast", {"model": "tr", "horizon": 2, "history": [1.0]}
    )
    assert status == 404 and "point (forecasting)" in answer["error"]
    body = {"model": "point", "horizon": 2, "histories": [[1.0]] * (MAX_QUEUE + 1)}
    assert service.post("/v1/forecast", body)[0] == 413
