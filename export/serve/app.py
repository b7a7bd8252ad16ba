"""The Starlette application: the health, readiness and metrics routes, every served kind's
routes, JSON errors, request metrics, and the lifespan that starts the schedulers and warms the
models up."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from export.serve.errors import ServiceError
from export.serve.metrics import RequestMetrics, ServiceMetrics
from export.serve.registry import SERVED_KINDS
from export.serve.service import Service

log = logging.getLogger("export.serve")


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "alive"})


async def ready(request: Request) -> JSONResponse:
    service: Service = request.app.state.service
    if service.ready:
        return JSONResponse({"ready": True, "models": list(service.models)})
    reason = service.warm_up_error or "loading and warming up the models"
    return JSONResponse({"ready": False, "reason": reason}, status_code=503)


async def metrics(request: Request) -> Response:
    registry: ServiceMetrics = request.app.state.metrics
    return Response(registry.render(), media_type=registry.content_type)


async def models(request: Request) -> JSONResponse:
    service: Service = request.app.state.service
    return JSONResponse(
        {
            "models": [
                {"name": m.name, "kind": m.kind.kind, "bundle": m.directory}
                for m in service.models.values()
            ]
        }
    )


async def service_error(request: Request, error: ServiceError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)


async def http_error(request: Request, error: HTTPException) -> JSONResponse:
    return JSONResponse({"error": error.detail}, status_code=error.status_code)


async def internal_error(request: Request, error: Exception) -> JSONResponse:
    log.exception("request to %s failed", request.url.path, exc_info=error)
    return JSONResponse({"error": f"internal error: {type(error).__name__}: {error}"}, 500)


def build_app(service: Service, registry: ServiceMetrics):
    """The ASGI application serving ``service``."""
    routes = [
        Route("/health", health),
        Route("/ready", ready),
        Route("/metrics", metrics),
        Route("/v1/models", models),
    ]
    for kind in SERVED_KINDS.values():  # every kind's routes: "no such model is loaded" is a 404
        routes += list(kind.routes)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        for model in service.models.values():
            model.batcher.start()
        warming = asyncio.create_task(service.warm_up())
        yield
        warming.cancel()
        for model in service.models.values():
            await model.batcher.stop()

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            ServiceError: service_error,
            HTTPException: http_error,
            Exception: internal_error,
        },
    )
    app.state.service = service
    app.state.metrics = registry
    return RequestMetrics(app, registry, {route.path for route in routes})
