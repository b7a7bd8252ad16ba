"""The models a service holds, the contract a model kind fulfils to be served, and running a
request's rows through a model's batcher with the service's limits.

To serve a new kind of bundle (``model.json`` ``kind``), write one route module that defines a
:class:`ServedKind` (see :mod:`export.serve.translate` for an example) and add it to
:data:`export.serve.registry.SERVED_KINDS`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from export.serve.batcher import Batcher, BatchRunner, Job, QueueFull
from export.serve.errors import ServiceError, busy, invalid, timed_out

DEFAULT_MAX_BODY_BYTES = 1 << 20


@dataclass(frozen=True)
class ServedKind:
    """What the service needs to serve one kind of bundle.

    ``load(directory, device, threads)`` returns the runtime object (a ``Translator``...);
    ``runner(runtime)`` returns its batch runner (see :class:`~export.serve.batcher.Batcher`:
    run rows of one group in the worker thread and resolve every job); ``warm_up(runtime)``
    returns one small request ``(group, [(length, payload)])`` run before ``/ready`` says yes;
    ``routes`` are Starlette routes whose endpoints find the service in
    ``request.app.state.service``."""

    kind: str
    load: Callable[[str, str, int | None], Any]
    runner: Callable[[Any], BatchRunner]
    warm_up: Callable[[Any], tuple[Hashable, list[tuple[int, Any]]]]
    routes: Sequence[Any]


@dataclass(eq=False)
class ServedModel:
    name: str
    kind: ServedKind
    directory: str
    runtime: Any
    batcher: Batcher


@dataclass(frozen=True)
class Limits:
    max_batch_rows: int = 32
    max_wait_s: float = 0.005
    max_queue_rows: int = 1024
    timeout_s: float = 30.0
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES


@dataclass(eq=False)
class Service:
    """Every model the process serves, by name, and the limits requests run under."""

    models: dict[str, ServedModel]
    limits: Limits
    ready: bool = False
    warm_up_error: str | None = None

    def model_for(self, kind: str, name: str | None) -> ServedModel:
        """The model a request names (``name`` None: the only one of ``kind``); 404 for an
        unknown name, 422 when several of the kind are loaded and none is named."""
        of_kind = [m for m in self.models.values() if m.kind.kind == kind]
        if name is None:
            if len(of_kind) == 1:
                return of_kind[0]
            if not of_kind:
                raise ServiceError(404, f"no {kind} model is loaded; loaded: {self.listing()}")
            names = ", ".join(m.name for m in of_kind)
            raise invalid("model", f"model is required: several {kind} models are loaded ({names})")
        model = self.models.get(name)
        if model is None or model.kind.kind != kind:
            raise ServiceError(404, f"no {kind} model named {name!r}; loaded: {self.listing()}")
        return model

    def listing(self) -> str:
        return ", ".join(f"{m.name} ({m.kind.kind})" for m in self.models.values()) or "none"

    def submit(
        self, model: ServedModel, group: Hashable, rows: list[tuple[int, Any]], stream: bool = False
    ) -> list[Job]:
        """Queue a request's rows; 503 with Retry-After when the queue is full."""
        try:
            return model.batcher.submit(group, rows, stream)
        except QueueFull as error:
            raise busy(1, str(error)) from None

    async def results(self, model: ServedModel, jobs: list[Job]) -> list:
        """Every job's result; 504 (and the rows withdrawn) past the time limit."""
        try:
            return await asyncio.wait_for(
                asyncio.gather(*(job.future for job in jobs)), self.limits.timeout_s
            )
        except asyncio.TimeoutError:
            model.batcher.withdraw(jobs)
            raise timed_out(self.limits.timeout_s) from None
        except asyncio.CancelledError:
            model.batcher.withdraw(jobs)
            raise

    async def run(self, model: ServedModel, group: Hashable, rows: list[tuple[int, Any]]) -> list:
        """Queue rows and wait for their results (503, 504 as above)."""
        if not rows:
            return []
        return await self.results(model, self.submit(model, group, rows))

    async def warm_up(self) -> None:
        """Run each model's warm-up request through its batcher; then the service is ready."""
        try:
            for model in self.models.values():
                group, rows = model.kind.warm_up(model.runtime)
                await self.run(model, group, rows)
        except Exception as error:  # reported by /ready; the service stays up
            self.warm_up_error = f"warm-up failed: {type(error).__name__}: {error}"
            return
        self.ready = True
