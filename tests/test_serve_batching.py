"""Dynamic batching in python -m export.serve: concurrent requests share batches (the
batch-size metric says so), and every answer is what the runtime gives that request alone,
seeded sampling included."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import SENTENCES
from lm_helpers import export_random_lm
from serve_helpers import Service, open_stream, read_events

from export.runtime import Generator, Translator

MAX_BATCH = 8


@pytest.fixture(scope="module")
def lm_bundle(tmp_path_factory) -> str:
    return export_random_lm(
        tmp_path_factory.mktemp("batch_lm"), hidden_size=24, embedding_size=12
    ).bundle


@pytest.fixture(scope="module")
def service(tmp_path_factory, translation_bundle, lm_bundle):
    # a long wait: after a batch of several rows the scheduler holds the next batch open until
    # MAX_BATCH rows are in, so that the requests below surely share one
    args = ["--bundle", f"tr={translation_bundle}", "--bundle", f"lm={lm_bundle}"]
    args += ["--max-batch-size", str(MAX_BATCH), "--max-wait-ms", "400"]
    service = Service.start(tmp_path_factory.mktemp("serve_batching"), args)
    yield service
    assert service.stop() == 0


def batches(service: Service, model: str) -> tuple[float, float]:
    """(batches run, batches of more than one row) by ``model`` so far."""
    total = service.metric("serve_batch_rows_count", model=model)
    return total, total - service.metric("serve_batch_rows_bucket", model=model, le="1.0")


def concurrently(function, items) -> list:
    with ThreadPoolExecutor(len(items)) as pool:
        return list(pool.map(function, items))


@pytest.mark.parametrize(
    "options",
    [{}, {"sample": True, "temperature": 1.0, "top_p": 0.9}, {"beam": 3, "n_best": 2}],
    ids=["greedy", "seeded-sampling", "beam"],
)
def test_concurrent_translations_share_batches_and_equal_the_runtime_alone(
    service, translation_bundle, options
):
    translator = Translator.load(translation_bundle)
    # one request per sentence, each with its own seed; one request of three sentences
    requests = [{"text": s, "seed": 100 + i} for i, s in enumerate(SENTENCES[: MAX_BATCH - 3])]
    requests.append({"text": SENTENCES[:3], "seed": 7})
    requests = [{"model": "tr", **options, **r} for r in requests]
    before, shared_before = batches(service, "tr")
    # a batch of two rows first, so that the scheduler waits for the next batch to fill
    assert service.post("/v1/translate", {"model": "tr", "text": SENTENCES[:2]})[0] == 200
    answers = concurrently(lambda body: service.post("/v1/translate", body), requests)
    for request, (status, _, body) in zip(requests, answers):
        assert status == 200, body
        text = request["text"] if isinstance(request["text"], list) else [request["text"]]
        settings = {k: v for k, v in request.items() if k not in ("model", "text")}
        if "sample" not in options:
            settings.pop("seed")
        alone = translator.translate(text, **settings)
        assert [t["text"] for t in body["translations"]] == [t.text for t in alone]
        assert [t["score"] for t in body["translations"]] == pytest.approx(
            [t.score for t in alone], abs=1e-4
        )
        hypotheses = [[h["text"] for h in t["hypotheses"]] for t in body["translations"]]
        assert hypotheses == [[h for h, _ in t.hypotheses] for t in alone]
    after, shared_after = batches(service, "tr")
    rows = MAX_BATCH + 2  # the eight rows of the requests, and the two of the first one
    assert shared_after - shared_before >= 2  # the first request's batch, and a shared one
    assert after - before < rows / 2


def test_options_that_differ_never_share_a_batch(service, translation_bundle):
    translator = Translator.load(translation_bundle)
    requests = [{"model": "tr", "text": s, "beam": 1 + i % 2} for i, s in enumerate(SENTENCES)]
    answers = concurrently(lambda body: service.post("/v1/translate", body), requests)
    for request, (status, _, body) in zip(requests, answers):
        assert status == 200
        alone = translator.translate([request["text"]], beam=request["beam"])
        assert body["translations"][0]["text"] == alone[0].text


def test_concurrent_generations_share_batches_and_sample_as_alone(service, lm_bundle):
    generator = Generator.load(lm_bundle)
    prompts = ["the king", "sweet lady hath", "o", "good night", "thou", "my lord"]
    requests = [
        {"prompt": p, "max_tokens": 40, "temperature": 1.0, "seed": 20 + i, "stream": i % 2 == 1}
        for i, p in enumerate(prompts)
    ]
    requests[0]["max_tokens"] = 400  # the others arrive while it runs, and then run together
    _, shared_before = batches(service, "lm")

    def ask(body):
        if not body["stream"]:
            status, _, answer = service.post("/v1/generate", body)
            assert status == 200, answer
            return answer["text"]
        connection, response = open_stream(service, body)
        events = read_events(response)
        connection.close()
        assert events[-1][0] == "done"
        pieces = "".join(data["text"] for _, data in events[:-1])
        assert pieces == events[-1][1]["text"]
        return pieces

    texts = concurrently(ask, requests)
    for request, text in zip(requests, texts):
        settings = {k: v for k, v in request.items() if k not in ("prompt", "stream")}
        assert text == "".join(generator.stream(request["prompt"], **settings))
    _, shared_after = batches(service, "lm")
    assert shared_after > shared_before
