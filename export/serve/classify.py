"""Serving classification bundles: ``POST /v1/classify``.

    {"model": optional name, "text": "a text" | ["a text", ...], "top_k": 2, "threshold": 0.1}
    -> {"model": name, "predictions": [[{"label", "probability"}, ...], ...]}

One list of predictions per text, most probable first: the ``top_k`` labels (default 1), and
with ``threshold`` only those with at least that probability (so maybe none), exactly what
``Classifier.predict(text, top_k=..., threshold=...)`` returns. Each text is a row of the
model's batcher; texts of requests with the same ``top_k`` and ``threshold`` share batches.
A text longer than the model reads is cut to its first ``max_length`` tokens, as in
``Classifier``.
"""

from __future__ import annotations

import json

from starlette.responses import JSONResponse
from starlette.routing import Route

from export.runtime import Classifier, Prediction
from export.serve.errors import invalid
from export.serve.request_body import only_fields, optional_str, read_json, texts
from export.serve.service import ServedKind

REQUEST_FIELDS = ("model", "text", "top_k", "threshold")


def load(directory: str, device: str, threads: int | None) -> Classifier:
    return Classifier.load(directory, device=device, threads=threads)


def runner(classifier: Classifier):
    def run_batch(group: tuple[int, float | None], jobs) -> None:
        top_k, threshold = group
        found = classifier.predict([job.payload for job in jobs], top_k, threshold)
        for job, predictions in zip(jobs, found):
            job.resolve(predictions)

    return run_batch


def warm_up(classifier: Classifier):
    return (1, None), [(1, "warm up")]


def top_k_of(body: dict, classes: int) -> int:
    value = body.get("top_k", 1)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= classes:
        raise invalid(
            "top_k", f"top_k must be an integer in [1, {classes}], got {json.dumps(value)}"
        )
    return value


def threshold_of(body: dict) -> float | None:
    value = body.get("threshold")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise invalid("threshold", f"threshold must be a number in [0, 1], got {json.dumps(value)}")
    return float(value)


def as_json(predictions: list[Prediction]) -> list[dict]:
    return [{"label": p.label, "probability": p.probability} for p in predictions]


async def classify(request) -> JSONResponse:
    service = request.app.state.service
    body = await read_json(request, service.limits.max_body_bytes)
    model = service.model_for("classification", optional_str(body, "model"))
    classifier: Classifier = model.runtime
    only_fields(body, REQUEST_FIELDS)
    sentences, _ = texts(body, "text", service.limits.max_queue_rows)
    group = (top_k_of(body, len(classifier.labels)), threshold_of(body))
    found = await service.run(model, group, [(len(text), text) for text in sentences])
    return JSONResponse({"model": model.name, "predictions": [as_json(p) for p in found]})


CLASSIFICATION = ServedKind(
    kind="classification",
    load=load,
    runner=runner,
    warm_up=warm_up,
    routes=[Route("/v1/classify", classify, methods=["POST"])],
)
