"""Serving language-model bundles: ``POST /v1/generate``.

    {"model": optional name, "prompt": "Once upon", "max_tokens": 100, "temperature": 0.8,
     "top_k", "top_p", "repetition_penalty", "stop", "seed", "stream": false}
    -> {"model": name, "text": continuation}

With ``"stream": true`` the answer is server-sent events: one ``data: {"text": piece}`` per piece
as ``Generator.stream`` yields it, then ``event: done`` with the whole text (or ``event: error``).
A prompt is a row of the model's batcher and samples from the stream its seed names, so the text
is what ``Generator.stream(prompt, **options)`` yields, whatever shared its batch. A client that
goes away mid-stream frees its row at the next token. For a stream, ``--timeout-s`` bounds the
wait for the first piece (later, the stream runs to ``max_tokens`` at most).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from export.runtime import DecodingOptions, Generator
from export.runtime.seeds import RowSeed
from export.serve.batcher import DONE, Job
from export.serve.errors import invalid, timed_out
from export.serve.request_body import boolean, decoding_options, optional_str, read_json
from export.serve.service import ServedKind

REQUEST_FIELDS = ("model", "prompt", "stream")


@dataclass(frozen=True)
class PromptRow:
    prompt: str
    seed: RowSeed


def load(directory: str, device: str, threads: int | None) -> Generator:
    return Generator.load(directory, device=device, threads=threads)


def runner(generator: Generator):
    def run_batch(options: DecodingOptions, jobs: list[Job]) -> None:
        texts = [""] * len(jobs)
        pieces = generator.continuations(
            [job.payload.prompt for job in jobs],
            options,
            seeds=[job.payload.seed for job in jobs],
            cancelled=lambda: [row for row, job in enumerate(jobs) if job.cancelled],
        )
        for row, piece in pieces:
            texts[row] += piece
            jobs[row].emit(piece)
        for job, text in zip(jobs, texts):
            job.resolve(text)

    return run_batch


def warm_up(generator: Generator):
    prompt = "" if generator.newline_id is not None else generator.tokenizer.decode([4])
    options = DecodingOptions(max_tokens=2, temperature=0.0)
    return options, [(1, PromptRow(prompt, None))]


def event(data: dict, name: str | None = None) -> bytes:
    head = f"event: {name}\n" if name else ""
    return f"{head}data: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


async def generate(request):
    service = request.app.state.service
    body = await read_json(request, service.limits.max_body_bytes)
    model = service.model_for("language_model", optional_str(body, "model"))
    prompt = body.get("prompt")
    if not isinstance(prompt, str):
        raise invalid("prompt", 'prompt is required: a string ("" starts a new line)')
    stream = boolean(body, "stream")
    options = decoding_options(body, "language_model", REQUEST_FIELDS)
    generator: Generator = model.runtime
    try:
        length = len(generator.encode_prompt(prompt))
    except ValueError as error:
        raise invalid("prompt", str(error)) from None
    rows = [(length, PromptRow(prompt, options.seed))]
    group = options.replace(seed=None)
    if not stream:
        (text,) = await service.run(model, group, rows)
        return JSONResponse({"model": model.name, "text": text})
    (job,) = service.submit(model, group, rows, stream=True)
    try:
        first = await asyncio.wait_for(job.pieces.get(), service.limits.timeout_s)
    except asyncio.TimeoutError:
        model.batcher.withdraw([job])
        raise timed_out(service.limits.timeout_s) from None
    except asyncio.CancelledError:
        model.batcher.withdraw([job])
        raise
    return StreamingResponse(
        events(model, job, first),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache"},
    )


async def events(model, job: Job, first):
    """The stream's events; closing it early (the client went away) frees the row."""
    try:
        item = first
        while item is not DONE:
            yield event({"text": item})
            item = await job.pieces.get()
        error = job.future.exception()
        if error is not None:
            yield event({"error": f"{type(error).__name__}: {error}"}, "error")
        else:
            yield event({"text": job.future.result()}, "done")
    finally:
        if not job.future.done():
            model.batcher.withdraw([job])


LANGUAGE_MODEL = ServedKind(
    kind="language_model",
    load=load,
    runner=runner,
    warm_up=warm_up,
    routes=[Route("/v1/generate", generate, methods=["POST"])],
)
