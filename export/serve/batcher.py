"""Dynamic batching: one scheduler per model merges the rows of concurrent requests.

A request becomes *jobs*, one per row (a sentence to translate, a prompt to continue). Jobs
wait in the model's queue; the scheduler takes the oldest job's *group* (rows share a batch only
when their groups are equal: the decoding options, seeds aside) and up to ``max_batch_rows``
jobs of that group, sorts them by length (longest first: padding stays small) and runs them on
the model's worker thread, off the event loop. The worker resolves each job (and, for streams,
emits its pieces) thread-safely.

When to start a batch: at once when ``max_batch_rows`` rows wait, or when the previous batch
held one row (a lone request never waits); after a batch of several rows, the scheduler waits
up to ``max_wait_s`` from that batch's end for the next one to fill, since the clients it just
answered are likely to come back (CTranslate2 and Triton's dynamic batcher flush on a size or a
delay the same way).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

DONE = object()  # the last item of a job's piece queue


@dataclass(eq=False)
class Job:
    """One row of a request. The event loop creates it; the worker thread resolves it."""

    group: Hashable  # rows share a batch only when their groups are equal
    length: int  # for length-sorted batches
    payload: Any  # what the model kind needs to run the row (ids and seed, prompt and seed)
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future
    pieces: asyncio.Queue | None = None  # streamed pieces, then DONE (streaming rows only)
    cancelled: bool = False  # the reader went away: a running row may stop early
    started: bool = False

    # -- called from the worker thread

    def emit(self, piece) -> None:
        if self.pieces is not None and not self.cancelled:
            self.loop.call_soon_threadsafe(self.pieces.put_nowait, piece)

    def resolve(self, result) -> None:
        self.loop.call_soon_threadsafe(self._settle, result, None)

    def fail(self, error: BaseException) -> None:
        self.loop.call_soon_threadsafe(self._settle, None, error)

    def _settle(self, result, error) -> None:
        if not self.future.done():
            if error is None:
                self.future.set_result(result)
            else:
                self.future.set_exception(error)
        if self.pieces is not None:
            self.pieces.put_nowait(DONE)


class QueueFull(Exception):
    """More rows than the queue holds."""


# run_batch(group, jobs), in the worker thread: run the rows and resolve (or fail) every job
BatchRunner = Callable[[Hashable, list[Job]], None]


@dataclass(eq=False)
class Batcher:
    """The scheduler of one model: a queue of jobs, a worker thread, the batching rule above."""

    name: str
    run_batch: BatchRunner
    max_batch_rows: int
    max_wait_s: float
    max_queue_rows: int
    on_queue: Callable[[int], None] = lambda rows: None  # queue depth, for metrics
    on_batch: Callable[[int], None] = lambda rows: None  # rows per batch, for metrics
    pending: list[Job] = field(default_factory=list)
    last_batch_rows: int = 0
    last_batch_end: float = 0.0

    def __post_init__(self) -> None:
        self.executor = ThreadPoolExecutor(1, thread_name_prefix=f"model-{self.name}")
        self.wake: asyncio.Event | None = None
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        """Start the scheduler on the running event loop."""
        self.wake = asyncio.Event()
        self.task = asyncio.get_running_loop().create_task(self.schedule())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        self.executor.shutdown(wait=True)

    def submit(
        self, group: Hashable, rows: list[tuple[int, Any]], stream: bool = False
    ) -> list[Job]:
        """Queue ``rows`` of (length, payload) as one request's jobs; QueueFull when the queue
        cannot take them all (none is queued then)."""
        if len(self.pending) + len(rows) > self.max_queue_rows:
            raise QueueFull(
                f"model {self.name!r} has {len(self.pending)} rows waiting; the queue holds "
                f"{self.max_queue_rows} (--max-queue)"
            )
        loop = asyncio.get_running_loop()
        jobs = [
            Job(
                group,
                length,
                payload,
                loop,
                loop.create_future(),
                asyncio.Queue() if stream else None,
            )
            for length, payload in rows
        ]
        self.pending.extend(jobs)
        self.on_queue(len(self.pending))
        self.wake.set()
        return jobs

    def withdraw(self, jobs: list[Job]) -> None:
        """The request is gone (timed out, disconnected): drop its queued rows and ask its
        running rows to stop where the model kind can."""
        for job in jobs:
            job.cancelled = True
        gone = set(map(id, jobs))
        self.pending = [job for job in self.pending if id(job) not in gone]
        self.on_queue(len(self.pending))

    def take(self) -> list[Job]:
        """The next batch: the oldest job's group, up to max_batch_rows jobs, longest first."""
        group = self.pending[0].group
        batch, rest = [], []
        for job in self.pending:
            if len(batch) < self.max_batch_rows and job.group == group:
                batch.append(job)
            else:
                rest.append(job)
        self.pending = rest
        self.on_queue(len(self.pending))
        batch.sort(key=lambda job: -job.length)
        return batch

    async def schedule(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self.pending:
                self.wake.clear()
                await self.wake.wait()
                continue
            if self.last_batch_rows > 1:
                deadline = self.last_batch_end + self.max_wait_s
                while len(self.pending) < self.max_batch_rows:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self.wake.clear()
                    try:
                        await asyncio.wait_for(self.wake.wait(), remaining)
                    except asyncio.TimeoutError:
                        break
                if not self.pending:
                    continue
            batch = self.take()
            for job in batch:
                job.started = True
            self.on_batch(len(batch))
            await loop.run_in_executor(self.executor, self.run_safely, batch)
            self.last_batch_rows = len(batch)
            self.last_batch_end = time.monotonic()

    def run_safely(self, batch: list[Job]) -> None:
        """In the worker thread: a failing batch fails its jobs, never the scheduler."""
        try:
            self.run_batch(batch[0].group, batch)
        except Exception as error:  # the model's own errors reach the requests as 500s
            for job in batch:
                job.fail(error)
