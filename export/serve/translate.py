"""Serving translation bundles: ``POST /v1/translate``.

    {"model": optional name, "text": "Hola." | ["Hola.", ...], "beam": 5, "n_best": 2, ...}
    -> {"model": name, "translations": [{"text", "score", "hypotheses": [{"text", "score"}]}]}

Every other key is a decoding option (``export.runtime.DecodingOptions``), checked by the
runtime. Each sentence is a row of the model's batcher; a sentence samples from the random stream
it has in ``Translator.translate`` (its place in ``text``, see ``export.runtime.seeds``), so the
answer is what ``Translator.translate(text, **options)`` returns, whatever shared its batches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from starlette.responses import JSONResponse
from starlette.routing import Route

from export.runtime import DecodingOptions, Translation, Translator
from export.runtime.seeds import RowSeed, row_seed
from export.runtime.tokenizers import UNK_ID
from export.runtime.translator import SourceTooLong
from export.serve.errors import too_large
from export.serve.request_body import decoding_options, optional_str, read_json, texts
from export.serve.service import ServedKind

REQUEST_FIELDS = ("model", "text")


@dataclass(frozen=True)
class SourceRow:
    ids: list[int]  # source token ids, not empty
    seed: RowSeed


def load(directory: str, device: str, threads: int | None) -> Translator:
    return Translator.load(directory, device=device, threads=threads)


def runner(translator: Translator):
    def run_batch(options: DecodingOptions, jobs) -> None:
        found = translator.search_batch(
            [job.payload.ids for job in jobs], options, [job.payload.seed for job in jobs]
        )
        for job, hypotheses in zip(jobs, found):
            job.resolve(translator.to_translation(hypotheses))

    return run_batch


def warm_up(translator: Translator):
    return DecodingOptions(), [(1, SourceRow([UNK_ID], None))]


def finite(score: float) -> float | None:
    return score if math.isfinite(score) else None


def as_json(translation: Translation) -> dict:
    return {
        "text": translation.text,
        "score": finite(translation.score),
        "hypotheses": [{"text": t, "score": finite(s)} for t, s in translation.hypotheses],
    }


async def translate(request) -> JSONResponse:
    service = request.app.state.service
    body = await read_json(request, service.limits.max_body_bytes)
    model = service.model_for("translation", optional_str(body, "model"))
    sentences, _ = texts(body, "text", service.limits.max_queue_rows)
    options = decoding_options(body, "translation", REQUEST_FIELDS)
    translator: Translator = model.runtime
    results: list[Translation | None] = [None] * len(sentences)
    rows, places = [], []
    for number, sentence in enumerate(sentences):
        try:
            ids = translator.encode_source(sentence, number)
        except SourceTooLong as error:
            raise too_large(str(error), "text") from None
        if ids:
            rows.append((len(ids), SourceRow(ids, row_seed(options.seed, number))))
            places.append(number)
        else:
            results[number] = translator.empty_translation(options)
    found = await service.run(model, options.replace(seed=None), rows)
    for number, translation in zip(places, found):
        results[number] = translation
    return JSONResponse({"model": model.name, "translations": [as_json(t) for t in results]})


TRANSLATION = ServedKind(
    kind="translation",
    load=load,
    runner=runner,
    warm_up=warm_up,
    routes=[Route("/v1/translate", translate, methods=["POST"])],
)
