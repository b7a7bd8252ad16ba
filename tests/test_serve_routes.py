"""python -m export.serve, route by route, against a real service on a loopback port (in a
Python without torch): the answers equal the runtime's own, and every bad request gets its
status (400, 404, 413, 422) with a message naming the problem."""

from __future__ import annotations

import pytest
from conftest import SENTENCES
from lm_helpers import export_random_lm
from serve_helpers import Service, open_stream, read_events

from export.runtime import Generator, Translator

MAX_QUEUE = 64


@pytest.fixture(scope="module")
def lm_bundle(tmp_path_factory) -> str:
    return export_random_lm(
        tmp_path_factory.mktemp("serve_lm"), hidden_size=24, embedding_size=12
    ).bundle


@pytest.fixture(scope="module")
def service(tmp_path_factory, translation_bundle, lm_bundle):
    args = ["--bundle", f"tr={translation_bundle}", "--bundle", f"tr2={translation_bundle}"]
    args += ["--bundle", f"lm={lm_bundle}", "--max-queue", str(MAX_QUEUE)]
    args += ["--max-body-bytes", "20000"]
    service = Service.start(tmp_path_factory.mktemp("serve_routes"), args)
    yield service
    assert service.stop() == 0


@pytest.fixture(scope="module")
def translator(translation_bundle) -> Translator:
    return Translator.load(translation_bundle)


@pytest.fixture(scope="module")
def generator(lm_bundle) -> Generator:
    return Generator.load(lm_bundle)


def as_json(translations) -> list[dict]:
    return [
        {
            "text": t.text,
            "score": pytest.approx(t.score, abs=1e-4),
            "hypotheses": [
                {"text": h, "score": pytest.approx(s, abs=1e-4)} for h, s in t.hypotheses
            ],
        }
        for t in translations
    ]


# ----------------------------------------------------------------------------- routes


def test_health_ready_models_and_metrics(service, translation_bundle):
    status, _, body = service.get("/health")
    assert status == 200 and body == {"status": "alive"}
    status, _, body = service.get("/ready")
    assert status == 200 and body == {"ready": True, "models": ["tr", "tr2", "lm"]}
    status, _, body = service.get("/v1/models")
    assert status == 200
    assert body["models"][0] == {"name": "tr", "kind": "translation", "bundle": translation_bundle}
    assert [m["kind"] for m in body["models"]] == ["translation", "translation", "language_model"]
    status, headers, text = service.get("/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    for name in ("serve_requests_total", "serve_request_seconds_bucket", "serve_batch_rows_bucket"):
        assert name in text
    # the warm-up ran one batch per model before /ready said yes
    assert service.metric("serve_batch_rows_count", model="lm") >= 1
    assert service.metric("serve_requests_total", route="/health", status="200") >= 1


@pytest.mark.parametrize(
    "options",
    [{}, {"beam": 3, "n_best": 2}, {"beam": 2, "length_penalty": 0.5, "max_length": [1.0, 3]}],
)
def test_translate_equals_the_runtime(service, translator, options):
    text = [SENTENCES[1], "", SENTENCES[4], SENTENCES[0], SENTENCES[6]]
    status, _, body = service.post("/v1/translate", {"model": "tr", "text": text, **options})
    assert status == 200, body
    assert body["model"] == "tr"
    assert body["translations"] == as_json(translator.translate(text, **options))


def test_translate_samples_as_the_runtime_with_the_same_seed(service, translator):
    options = {"sample": True, "temperature": 1.5, "top_k": 8, "seed": 11}
    status, _, body = service.post("/v1/translate", {"model": "tr", "text": SENTENCES, **options})
    assert status == 200
    expected = translator.translate(SENTENCES, **options)
    assert [t["text"] for t in body["translations"]] == [t.text for t in expected]
    # a single string is one sentence
    status, _, body = service.post("/v1/translate", {"model": "tr2", "text": SENTENCES[2]})
    assert status == 200 and body["model"] == "tr2"
    assert body["translations"][0]["text"] == translator.translate([SENTENCES[2]])[0].text


def test_generate_equals_the_runtime(service, generator):
    options = {"max_tokens": 30, "temperature": 0.9, "top_p": 0.95, "seed": 5, "stop": ["?"]}
    status, _, body = service.post("/v1/generate", {"prompt": "the king", **options})
    assert status == 200, body
    assert body == {"model": "lm", "text": "".join(generator.stream("the king", **options))}
    status, _, body = service.post("/v1/generate", {"prompt": "", "max_tokens": 12, "seed": 1})
    assert body["text"] == "".join(generator.stream("", max_tokens=12, seed=1))


def test_generate_streams_the_pieces_of_the_runtime(service, generator):
    options = {"max_tokens": 25, "temperature": 0.8, "seed": 3, "repetition_penalty": 1.3}
    connection, response = open_stream(service, {"prompt": "sweet lady", "stream": True, **options})
    assert response.status == 200
    assert response.getheader("Content-Type").startswith("text/event-stream")
    events = read_events(response)
    connection.close()
    pieces = list(generator.stream("sweet lady", **options))
    assert events[:-1] == [("message", {"text": piece}) for piece in pieces]
    assert events[-1] == ("done", {"text": "".join(pieces)})
    assert len(pieces) > 1


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "body, message",
    [
        (b"{not json", "malformed JSON"),
        (b'["a list"]', "the body must be a JSON object, not list"),
        (b"\xff\xfe", "malformed JSON"),
    ],
)
def test_malformed_json_is_400(service, body, message):
    status, _, answer = service.post("/v1/translate", body)
    assert status == 400 and message in answer["error"]


@pytest.mark.parametrize(
    "route, body, field, message",
    [
        ("/v1/translate", {"text": "gato", "beam": "5"}, "beam", "beam must be an integer >= 1"),
        ("/v1/translate", {"text": "gato", "beem": 5}, "beem", "did you mean 'beam'"),
        ("/v1/translate", {"text": "gato", "top_p": 2}, "top_p", "top_p must be in (0, 1]"),
        ("/v1/translate", {"text": "gato", "stop": ["."]}, "stop", "language model models only"),
        ("/v1/translate", {"text": 5}, "text", "text must be a string or a list of strings"),
        ("/v1/translate", {"text": ["a", 1]}, "text", "a list of strings"),
        ("/v1/translate", {}, "text", "text is required"),
        ("/v1/translate", {"text": "gato", "seed": -1}, "seed", "seed must be an integer >= 0"),
        ("/v1/translate", {"text": "a", "model": 3}, "model", "model must be a string"),
        ("/v1/generate", {"prompt": 3}, "prompt", "prompt is required: a string"),
        ("/v1/generate", {"prompt": "the", "beam": 2}, "beam", "applies to translation models"),
        ("/v1/generate", {"prompt": "the", "stream": "yes"}, "stream", "true or false"),
        ("/v1/generate", {"prompt": "zzz\u00e9"}, "prompt", "vocabulary lacks"),
        ("/v1/generate", {"prompt": "the", "max_tokens": -1}, "max_tokens", "an integer >= 0"),
    ],
)
def test_a_wrong_type_or_value_is_422_naming_the_field(service, route, body, field, message):
    if route == "/v1/translate" and "model" not in body:
        body = {"model": "tr", **body}
    status, _, answer = service.post(route, body)
    assert status == 422, answer
    assert answer["field"] == field and message in answer["error"], answer


def test_options_that_conflict_are_422(service):
    status, _, answer = service.post(
        "/v1/translate", {"model": "tr", "text": "gato", "beam": 3, "sample": True}
    )
    assert status == 422 and "not both" in answer["error"]


def test_models_are_found_by_name(service):
    status, _, answer = service.post("/v1/translate", {"text": "gato"})
    assert status == 422 and answer["field"] == "model"
    assert "several translation models are loaded (tr, tr2)" in answer["error"]
    status, _, answer = service.post("/v1/translate", {"model": "nope", "text": "gato"})
    assert status == 404
    assert "no translation model named 'nope'" in answer["error"]
    assert "loaded: tr (translation), tr2 (translation), lm (language_model)" in answer["error"]
    status, _, answer = service.post("/v1/generate", {"model": "tr", "prompt": "the"})
    assert status == 404 and "no language_model model named 'tr'" in answer["error"]
    status, _, answer = service.get("/v1/nothing-here")
    assert status == 404 and answer == {"error": "Not Found"}
    status, _, answer = service.get("/v1/translate")
    assert status == 405


def test_over_long_inputs_are_413(service, translator):
    long_sentence = " ".join(["gato"] * (translator.max_source_length + 1))
    status, _, answer = service.post(
        "/v1/translate", {"model": "tr", "text": ["gato", long_sentence]}
    )
    assert status == 413 and answer["field"] == "text"
    assert (
        "sentence 2 has 13 subword tokens; this model was trained on at most 12" in answer["error"]
    )
    status, _, answer = service.post(
        "/v1/translate", {"model": "tr", "text": ["gato"] * (MAX_QUEUE + 1)}
    )
    assert status == 413 and f"at most {MAX_QUEUE}" in answer["error"]
    status, _, answer = service.post("/v1/translate", {"model": "tr", "text": "gato " * 5000})
    assert status == 413 and "this service takes at most 20000" in answer["error"]
    # the service is still there, and counted every answer
    assert service.get("/health")[0] == 200
    assert service.metric("serve_requests_total", route="/v1/translate", status="413") == 3
