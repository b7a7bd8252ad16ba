"""POST /v1/classify against a real service (in a Python without torch): the answers equal
``Classifier.predict`` with the same top_k and threshold, alone and when concurrent requests
share batches, and bad requests get 404, 413 or 422 naming the field."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from classify_helpers import labelled_rows
from serve_helpers import Service

from classify.config import ClassifierConfig
from classify.model import build_model
from export.classification import export_classifier
from export.runtime import Classifier
from seq2seq.core.checkpoint import checkpoint_payload
from seq2seq.core.config import config_from_dict

TEXTS = ["cat dog", "bread and cheese", "", "rain and snow with wind and sun", "zebra", "soup"]
MAX_QUEUE = 16


@pytest.fixture(scope="module")
def classifier_bundle(tmp_path_factory) -> str:
    """A random biLSTM classifier of three labels, exported."""
    from classify.vocabulary import build_tokenizer

    config = config_from_dict(
        ClassifierConfig,
        dict(level="word", word_min_count=1, embedding_size=12, hidden_size=10, max_length=6),
        "test",
    )
    run = tmp_path_factory.mktemp("classifier")
    texts = [text for _, text in labelled_rows()]
    tokenizer = build_tokenizer(config, texts, str(run), log=lambda *_: None)
    torch.manual_seed(3)
    model = build_model(config, tokenizer.vocab_size, 3).eval()
    payload = checkpoint_payload(
        "classification",
        config,
        model.state_dict(),
        {"tokenizer": tokenizer.state(), "labels": ["animals", "food", "weather"]},
        progress={"step": 0},
    )
    export_classifier(payload, str(run / "bundle"))
    return str(run / "bundle")


@pytest.fixture(scope="module")
def service(tmp_path_factory, classifier_bundle, translation_bundle):
    args = ["--bundle", f"cls={classifier_bundle}", "--bundle", f"tr={translation_bundle}"]
    args += ["--max-queue", str(MAX_QUEUE), "--max-batch-size", "8", "--max-wait-ms", "300"]
    service = Service.start(tmp_path_factory.mktemp("serve_classify"), args)
    yield service
    assert service.stop() == 0


@pytest.fixture(scope="module")
def classifier(classifier_bundle) -> Classifier:
    return Classifier.load(classifier_bundle)


def as_json(predictions) -> list[list[dict]]:
    return [
        [{"label": p.label, "probability": pytest.approx(p.probability, abs=1e-6)} for p in row]
        for row in predictions
    ]


@pytest.mark.parametrize(
    "options", [{}, {"top_k": 2}, {"top_k": 3, "threshold": 0.3}, {"threshold": 0.99}]
)
def test_answers_equal_the_runtime(service, classifier, options):
    status, _, body = service.post("/v1/classify", {"text": TEXTS, **options})
    assert status == 200, body
    assert body["model"] == "cls"
    assert body["predictions"] == as_json(classifier.predict(TEXTS, **options))
    status, _, body = service.post("/v1/classify", {"model": "cls", "text": TEXTS[0], **options})
    assert status == 200 and body["predictions"] == as_json(
        classifier.predict([TEXTS[0]], **options)
    )


def test_concurrent_requests_share_batches_and_equal_the_runtime_alone(service, classifier):
    def batches() -> float:
        return service.metric("serve_batch_rows_count", model="cls")

    before = batches()
    # a batch of two rows first: the scheduler then holds the next batch open up to 300 ms
    assert service.post("/v1/classify", {"text": TEXTS[:2]})[0] == 200
    with ThreadPoolExecutor(len(TEXTS)) as pool:
        answers = list(
            pool.map(lambda t: service.post("/v1/classify", {"text": t, "top_k": 2}), TEXTS)
        )
    for text, (status, _, body) in zip(TEXTS, answers):
        assert status == 200, body
        assert body["predictions"] == as_json(classifier.predict([text], top_k=2))
    assert batches() - before < 1 + len(TEXTS)  # some requests shared a batch


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "text"),
        ({"text": 3}, "text"),
        ({"text": "a", "top_k": 0}, "top_k"),
        ({"text": "a", "top_k": 4}, "top_k"),
        ({"text": "a", "top_k": True}, "top_k"),
        ({"text": "a", "threshold": 1.5}, "threshold"),
        ({"text": "a", "threshold": "high"}, "threshold"),
        ({"text": "a", "beam": 5}, "beam"),
    ],
)
def test_bad_fields_are_422_naming_the_field(service, body, field):
    status, _, answer = service.post("/v1/classify", body)
    assert status == 422, answer
    assert answer["field"] == field and field in answer["error"]


def test_unknown_model_404_and_too_many_texts_413(service):
    status, _, answer = service.post("/v1/classify", {"model": "tr", "text": "a"})
    assert status == 404 and "cls (classification)" in answer["error"]
    status, _, answer = service.post("/v1/classify", {"text": ["a"] * (MAX_QUEUE + 1)})
    assert status == 413, answer
