"""classify/model.py and the export: padding never changes a text's probabilities (alone ==
in a padded batch, bidirectional, every pooling), the ONNX graph gives the torch model's
probabilities (fp32 and int8), and a small model memorises a tiny labelled set."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from classify_helpers import labelled_rows

from classify.config import ClassifierConfig
from classify.model import build_model
from export.runtime.classifier import pad_ids
from seq2seq.core.config import config_from_dict

SEQUENCES = [[5, 6, 7], [8], [9, 10, 11, 12, 13, 14, 15], [6, 6], [7, 8, 9, 10]]


def tiny_model(**overrides):
    settings = dict(
        embedding_size=12, hidden_size=10, attention_size=6, layers=2, dropout=0.0,
        embedding_dropout=0.0, token_dropout=0.0,
    )  # fmt: skip
    settings.update(overrides)
    config = config_from_dict(ClassifierConfig, settings, "test")
    torch.manual_seed(0)
    return build_model(config, vocab_size=20, classes=4).eval()


@pytest.mark.parametrize("pooling", ["last", "mean", "max", "attention"])
@pytest.mark.parametrize("cell, bidirectional", [("lstm", True), ("gru", True), ("rnn", False)])
def test_a_text_alone_equals_the_text_in_a_padded_batch(pooling, cell, bidirectional):
    model = tiny_model(pooling=pooling, cell=cell, bidirectional=bidirectional)
    ids, lengths = pad_ids(SEQUENCES)
    ids[ids == 0] = 19  # padding holds junk ids: they must not matter either
    with torch.no_grad():
        batch = model(torch.from_numpy(ids), torch.from_numpy(lengths))
        for row, sequence in enumerate(SEQUENCES):
            alone = model(torch.tensor([sequence]), torch.tensor([len(sequence)]))
            torch.testing.assert_close(batch[row : row + 1], alone, rtol=1e-5, atol=1e-6)


def test_the_backward_direction_matters():
    """A bidirectional model's result depends on what follows a token, a forward one's
    'last' state reads the whole text too: reversing a text changes both."""
    model = tiny_model(pooling="mean")
    with torch.no_grad():
        a = model(torch.tensor([[5, 6, 7]]), torch.tensor([3]))
        b = model(torch.tensor([[7, 6, 5]]), torch.tensor([3]))
    assert not torch.allclose(a, b)


@pytest.fixture(scope="module")
def classifier_checkpoint(tmp_path_factory):
    """A random 2-layer biLSTM classifier's checkpoint payload, exported fp32 and int8."""
    from classify.vocabulary import build_tokenizer
    from seq2seq.core.checkpoint import checkpoint_payload

    config = config_from_dict(
        ClassifierConfig,
        dict(level="word", word_min_count=1, embedding_size=12, hidden_size=10, layers=2,
             attention_size=6, max_length=6),
        "test",
    )  # fmt: skip
    texts = [text for _, text in labelled_rows()]
    tokenizer = build_tokenizer(config, texts, str(tmp_path_factory.mktemp("run")), log=print)
    torch.manual_seed(1)
    model = build_model(config, tokenizer.vocab_size, 3).eval()
    labels = ["animals", "food", "weather"]
    return checkpoint_payload(
        "classification",
        config,
        model.state_dict(),
        {"tokenizer": tokenizer.state(), "labels": labels},
        progress={"step": 0},
    )


TEXTS = [
    "cat dog",
    "bread",
    "rain and snow with wind and sun and the cloud and fog",  # longer than max_length
    "",  # no tokens: read as one <unk>
    "zebra unknown words",
    "the cheese",
]


@pytest.mark.parametrize("quantize", [None, "int8"])
def test_onnx_probabilities_equal_the_torch_model(classifier_checkpoint, tmp_path, quantize):
    from classify.torch_classifier import TorchClassifier
    from export.classification import export_classifier
    from export.runtime import Classifier

    bundle = tmp_path / "bundle"
    manifest = export_classifier(classifier_checkpoint, str(bundle), quantize=quantize)
    assert manifest["kind"] == "classification" and manifest["max_length"] == 6
    assert manifest["labels"] == ["animals", "food", "weather"]
    assert set(manifest["files"]) == {"classifier.onnx", "text.vocab.json"}
    onnx = Classifier.load(str(bundle))
    from classify.model import model_from_checkpoint

    config, model, tokenizer, labels = model_from_checkpoint(classifier_checkpoint, "test")
    torch_classifier = TorchClassifier(model, tokenizer, labels, 6, False)
    expected = torch_classifier.probabilities(TEXTS)
    for batch_size in (1, 4, 64):
        got = onnx.probabilities(TEXTS, batch_size=batch_size)
        assert got.shape == (len(TEXTS), 3)
        np.testing.assert_allclose(got.sum(1), 1.0, rtol=1e-5)
        tolerance = 1e-5 if quantize is None else 0.05
        np.testing.assert_allclose(got, expected, atol=tolerance)
    # cut to max_length: a text that differs only after 6 tokens gets the same result
    longer = onnx.probabilities([TEXTS[2], TEXTS[2] + " heat heat"])
    np.testing.assert_allclose(longer[0], longer[1], atol=1e-6)
    predictions = onnx.predict(TEXTS, top_k=2)
    assert all(len(p) == 2 and p[0].probability >= p[1].probability for p in predictions)
    assert predictions[0][0].label == labels[int(expected[0].argmax())] or quantize


def test_predict_options_are_checked(classifier_checkpoint, tmp_path):
    from export.classification import export_classifier
    from export.runtime import Classifier

    export_classifier(classifier_checkpoint, str(tmp_path / "b"))
    classifier = Classifier.load(str(tmp_path / "b"))
    with pytest.raises(ValueError, match=r"top_k must be in \[1, 3\]"):
        classifier.predict(["cat"], top_k=4)
    with pytest.raises(ValueError, match=r"threshold must be in \[0, 1\]"):
        classifier.predict(["cat"], threshold=1.5)
    assert classifier.predict(["cat"], top_k=3, threshold=1.0) == [[]]
    assert classifier.predict("cat")[0][0].label in classifier.labels  # one str: one text
    assert classifier.probabilities([]).shape == (0, 3)


@pytest.mark.parametrize(
    "settings",
    [
        dict(pooling="last", cell="gru", bidirectional=True),
        dict(pooling="mean", cell="rnn", bidirectional=False, layers=1),
        dict(pooling="max", cell="lstm", bidirectional=False),
    ],
)
def test_every_pooling_and_cell_exports_with_the_torch_probabilities(
    classifier_checkpoint, tmp_path, settings
):
    from classify.model import model_from_checkpoint
    from classify.torch_classifier import TorchClassifier
    from export.classification import export_classifier
    from export.runtime import Classifier
    from seq2seq.core.checkpoint import checkpoint_payload

    config = config_from_dict(
        ClassifierConfig, {**classifier_checkpoint["config"], **settings}, "test"
    )
    extras = classifier_checkpoint["extras"]
    torch.manual_seed(2)
    model = build_model(config, 40, len(extras["labels"]))
    vocab = extras["tokenizer"]["tokens"]
    assert len(vocab) <= 40
    extras = {**extras, "tokenizer": {"kind": "word", "tokens": vocab + [f"w{i}" for i in
                                      range(40 - len(vocab))]}}  # fmt: skip
    payload = checkpoint_payload("classification", config, model.state_dict(), extras, {})
    export_classifier(payload, str(tmp_path / "b"))
    _, model, tokenizer, labels = model_from_checkpoint(payload, "test")
    expected = TorchClassifier(model, tokenizer, labels, config.max_length, False)
    got = Classifier.load(str(tmp_path / "b")).probabilities(TEXTS, batch_size=4)
    np.testing.assert_allclose(got, expected.probabilities(TEXTS, batch_size=1), atol=1e-5)
