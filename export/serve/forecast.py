"""Serving forecasting bundles: ``POST /v1/forecast``.

    {"model": optional name, "horizon": 12,
     "history": [v1, v2, ...] | [[target, covariate, ...], ...], "name": optional series name}
    or {"horizon": 12, "histories": [history, ...], "names": [name or null, ...]}
    -> {"model": name, "forecasts": [{"forecast": [...], "lower": [...] | null,
                                      "upper": [...] | null}, ...]}

One forecast per history: the ``horizon`` steps after it, exactly what
``Forecaster.predict_many(histories, horizon, names)`` returns (``lower``/``upper``: a
probabilistic model's interval). A name picks the scaler the model stored for that series; a
history of a series the model never saw is scaled on its own. Histories of requests with the
same horizon share batches.
"""

from __future__ import annotations

import json
import math

import numpy as np
from starlette.responses import JSONResponse
from starlette.routing import Route

from export.runtime import Forecast, Forecaster
from export.serve.errors import invalid, too_large
from export.serve.request_body import only_fields, optional_str, read_json
from export.serve.service import ServedKind

REQUEST_FIELDS = ("model", "horizon", "history", "name", "histories", "names")
MAX_HORIZON = 10_000  # steps; past it the answer alone would be megabytes


def load(directory: str, device: str, threads: int | None) -> Forecaster:
    return Forecaster.load(directory, device=device, threads=threads)


def runner(forecaster: Forecaster):
    def run_batch(horizon: int, jobs) -> None:
        histories = [job.payload[0] for job in jobs]
        names = [job.payload[1] for job in jobs]
        for job, forecast in zip(jobs, forecaster.predict_many(histories, horizon, names)):
            job.resolve(forecast)

    return run_batch


def warm_up(forecaster: Forecaster):
    channels = int(forecaster.settings["channels"])
    history = np.ones((forecaster.context_length + forecaster.transform.warmup + 1, channels))
    return 1, [(len(history), (history, None))]


def horizon_of(body: dict, forecaster: Forecaster) -> int:
    if "horizon" not in body:
        raise invalid("horizon", "horizon is required: the number of steps to forecast")
    value = body["horizon"]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise invalid(
            "horizon", f"horizon must be an integer of at least 1, got {json.dumps(value)}"
        )
    if forecaster.head == "direct" and value > forecaster.model_horizon:
        raise invalid(
            "horizon",
            f"this model has a direct head of {forecaster.model_horizon} steps; ask for at most "
            f"{forecaster.model_horizon}",
        )
    if value > MAX_HORIZON:
        raise too_large(f"horizon {value} is over {MAX_HORIZON} steps", "horizon")
    return value


def is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def history_of(value, field: str, forecaster: Forecaster) -> np.ndarray:
    """One history as a [time, channels] float64 array; 422 naming ``field`` when it is not a
    list of finite numbers (or of rows of ``channels`` numbers), or too short to read."""
    channels = int(forecaster.settings["channels"])
    shape = "a list of numbers" if channels == 1 else f"a list of rows of {channels} numbers"
    rows = value if isinstance(value, list) else None
    if rows is None or not all(
        is_number(v) or (isinstance(v, list) and all(map(is_number, v))) for v in rows
    ):
        raise invalid(field, f"{field} must be {shape}")
    try:
        values = np.asarray(rows, dtype=np.float64)
    except ValueError:  # rows of different lengths
        raise invalid(field, f"{field} must be {shape}") from None
    if values.ndim == 1 and channels == 1:
        values = values[:, None]
    if values.ndim != 2 or values.shape[1] != channels:
        raise invalid(field, f"{field} must be {shape}")
    if not np.isfinite(values).all():
        raise invalid(field, f"{field} holds NaN or infinite values; fill them first")
    needed = forecaster.transform.warmup + 1
    if len(values) < needed:
        raise invalid(field, f"{field} needs at least {needed} values, got {len(values)}")
    return values


def requested_series(body: dict, forecaster: Forecaster, max_rows: int) -> list[tuple]:
    """(history, name) of every series the request asks for."""
    if ("history" in body) == ("histories" in body):
        raise invalid("history", "give history (one series) or histories (a list), not both")
    if "history" in body:
        return [(history_of(body["history"], "history", forecaster), optional_str(body, "name"))]
    histories = body["histories"]
    if not isinstance(histories, list) or not histories:
        raise invalid("histories", "histories must be a non-empty list of histories")
    if len(histories) > max_rows:
        raise too_large(
            f"histories has {len(histories)} series; this service takes at most {max_rows}",
            "histories",
        )
    names = body.get("names", [None] * len(histories))
    if (
        not isinstance(names, list)
        or len(names) != len(histories)
        or not all(n is None or isinstance(n, str) for n in names)
    ):
        raise invalid("names", "names must be a list of strings (or nulls), one per history")
    return [
        (history_of(h, f"histories[{i}]", forecaster), name)
        for i, (h, name) in enumerate(zip(histories, names))
    ]


def numbers(values) -> list[float | None] | None:
    if values is None:
        return None
    return [float(v) if math.isfinite(v) else None for v in values]


def as_json(forecast: Forecast) -> dict:
    return {
        "forecast": numbers(forecast.forecast),
        "lower": numbers(forecast.lower),
        "upper": numbers(forecast.upper),
    }


async def forecast(request) -> JSONResponse:
    service = request.app.state.service
    body = await read_json(request, service.limits.max_body_bytes)
    model = service.model_for("forecasting", optional_str(body, "model"))
    forecaster: Forecaster = model.runtime
    only_fields(body, REQUEST_FIELDS)
    horizon = horizon_of(body, forecaster)
    series = requested_series(body, forecaster, service.limits.max_queue_rows)
    found = await service.run(model, horizon, [(len(h), (h, name)) for h, name in series])
    return JSONResponse({"model": model.name, "forecasts": [as_json(f) for f in found]})


FORECASTING = ServedKind(
    kind="forecasting",
    load=load,
    runner=runner,
    warm_up=warm_up,
    routes=[Route("/v1/forecast", forecast, methods=["POST"])],
)
