"""export/bundle.py and the Translator's input checks: a bundle the runtime cannot use raises
BundleError saying what is wrong; odd inputs (empty lines, over-long sentences) behave as
documented."""

from __future__ import annotations

import json
import shutil

import pytest

from export.runtime import Generator, Translator
from export.runtime.bundle import (
    FORMAT_VERSION,
    MANIFEST,
    BundleError,
    read_manifest,
    write_manifest,
)


@pytest.fixture
def bundle(translation_bundle, tmp_path):
    """A private copy of the session's translation bundle, free to damage."""
    return shutil.copytree(translation_bundle, tmp_path / "bundle")


def edit_manifest(bundle, **changes):
    path = bundle / MANIFEST
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest.update(changes)
    path.write_text(json.dumps(manifest), encoding="utf-8")


def test_a_good_bundle_loads_and_lists_its_files(bundle):
    manifest = read_manifest(str(bundle), expected_kind="translation")
    assert manifest["format"] == "rnn-seq-bundle"
    assert manifest["format_version"] == FORMAT_VERSION
    assert set(manifest["files"]) == {p.name for p in bundle.iterdir()} - {MANIFEST}
    assert Translator.load(str(bundle)).translate(["el gato"])[0].text


def test_missing_file(bundle):
    (bundle / "decoder_step.onnx").unlink()
    with pytest.raises(BundleError, match="decoder_step.onnx is missing from the bundle"):
        Translator.load(str(bundle))


def test_corrupted_file_fails_its_checksum(bundle):
    path = bundle / "encoder.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="encoder.onnx: checksum mismatch"):
        Translator.load(str(bundle))
    # skipping verification gets as far as onnxruntime, which still says which file it is
    with pytest.raises(BundleError, match="encoder.onnx"):
        Translator.load(str(bundle), verify=False)


def test_unknown_format_version(bundle):
    edit_manifest(bundle, format_version=FORMAT_VERSION + 1)
    with pytest.raises(BundleError, match=r"format version 2; this runtime reads version 1"):
        Translator.load(str(bundle))


def test_a_bundle_of_the_wrong_kind(bundle):
    with pytest.raises(
        BundleError,
        match="holds a translation model, not a language_model model; load it with Translator.load",
    ):
        Generator.load(str(bundle))
    edit_manifest(bundle, kind="language_model")
    with pytest.raises(BundleError, match="load it with Generator.load"):
        Translator.load(str(bundle))
    edit_manifest(bundle, kind="speech")
    with pytest.raises(BundleError, match="unknown bundle kind 'speech'"):
        Translator.load(str(bundle))


def test_a_directory_that_is_not_a_bundle(tmp_path):
    (tmp_path / "encoder.onnx").write_bytes(b"")
    with pytest.raises(BundleError, match=f"{tmp_path}: not a bundle \\(model.json is missing\\)"):
        Translator.load(str(tmp_path))
    with pytest.raises(BundleError, match="no such bundle directory"):
        Translator.load(str(tmp_path / "nowhere"))
    (tmp_path / MANIFEST).write_text("{not json", encoding="utf-8")
    with pytest.raises(BundleError, match="not valid JSON"):
        Translator.load(str(tmp_path))
    (tmp_path / MANIFEST).write_text('{"format": "something-else"}', encoding="utf-8")
    with pytest.raises(BundleError, match="not a rnn-seq-bundle manifest"):
        Translator.load(str(tmp_path))


def drop(manifest: dict, dotted: str) -> None:
    section, _, key = dotted.partition(".")
    if key:
        del manifest[section][key]
    else:
        del manifest[section]


@pytest.mark.parametrize(
    "missing",
    [
        "graphs",
        "graphs.encoder",
        "graphs.decoder_step",
        "graphs.state_names",
        "tokenizers",
        "tokenizers.source",
        "tokenizers.target",
        "max_source_length",
    ],
)
def test_a_manifest_missing_an_entry_is_a_bundle_error(bundle, missing):
    """Before the layout change, Translator.load raised KeyError here."""
    path = bundle / MANIFEST
    manifest = json.loads(path.read_text(encoding="utf-8"))
    drop(manifest, missing)
    path.write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(BundleError, match=f"model.json lacks {missing.split('.')[0]}"):
        Translator.load(str(bundle))


@pytest.mark.parametrize(
    "section, key, value, message",
    [
        ("graphs", "state_names", "h", "graphs.state_names should be a list, not str"),
        ("graphs", "encoder", 3, "graphs.encoder should be a str, not int"),
        ("tokenizers", "source", ["x"], "tokenizers.source should be a dict, not list"),
        (None, "max_source_length", "200", "max_source_length should be a int, not str"),
        (None, "files", ["encoder.onnx"], "files must map file names to sha256 checksums"),
        ("graphs", "state_names", ["h"], "inputs are"),  # the graph has h and c: a mismatch
        ("graphs", "encoder", "decoder_step.onnx", "decoder_step.onnx: inputs are"),
    ],
)
def test_a_malformed_translation_manifest_is_a_bundle_error(bundle, section, key, value, message):
    path = bundle / MANIFEST
    manifest = json.loads(path.read_text(encoding="utf-8"))
    (manifest if section is None else manifest[section])[key] = value
    path.write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(BundleError) as error:
        Translator.load(str(bundle))
    assert message in str(error.value)


def test_a_tokenizer_spec_naming_a_missing_file_is_a_bundle_error(bundle):
    path = bundle / MANIFEST
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest["tokenizers"]["source"] = {"kind": "word", "file": "nowhere.vocab.json"}
    path.write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(BundleError, match="cannot load the tokenizer .*nowhere.vocab.json"):
        Translator.load(str(bundle))
    manifest["tokenizers"]["source"] = {"kind": "klingon", "file": "vocab.vocab.json"}
    path.write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(BundleError, match="unknown tokenizer kind 'klingon'"):
        Translator.load(str(bundle), verify=False)
    manifest["tokenizers"]["source"] = {"kind": "word"}
    path.write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(BundleError, match="a tokenizer spec needs a kind and a file"):
        Translator.load(str(bundle), verify=False)


def test_bundle_errors_are_value_errors():
    # so command-line tools that report ValueError report bundle problems too
    assert issubclass(BundleError, ValueError)


def test_write_manifest_checksums_every_file_but_itself(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"abc")
    (tmp_path / "b.tmp").write_bytes(b"ignored")
    manifest = write_manifest(str(tmp_path), {"kind": "translation"})
    assert manifest["files"] == {
        "a.bin": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    }
    assert read_manifest(str(tmp_path)) == manifest
    assert not (tmp_path / (MANIFEST + ".tmp")).exists()


# ----------------------------------------------------------------------------- inputs


def test_empty_lines_translate_to_empty_strings(translation_bundle):
    translator = Translator.load(translation_bundle)
    results = translator.translate(["", "el gato", "   ", "\t"], beam=3, n_best=2)
    assert [r.text for r in results[::2]] == ["", ""]
    assert results[0].score == 0.0 and results[0].hypotheses == [("", 0.0), ("", 0.0)]
    assert results[3].text == ""
    assert results[1].text == translator.translate(["el gato"], beam=3)[0].text
    assert translator.translate([]) == []


def test_too_long_inputs_raise_unless_truncated(translation_bundle):
    translator = Translator.load(translation_bundle)
    limit = translator.max_source_length
    words = ["gato", "perro", "casa", "mesa"] * 10
    long = " ".join(words[: limit + 3])
    with pytest.raises(ValueError) as error:
        translator.translate(["el gato", long])
    message = str(error.value)
    assert f"sentence 2 has {limit + 3} subword tokens" in message
    assert f"at most {limit}" in message and "truncate=True" in message
    cut = " ".join(words[:limit])
    assert translator.translate([long], truncate=True)[0] == translator.translate([cut])[0]
    assert translator.translate([cut])[0].text  # exactly the limit is fine


def test_bad_arguments_are_explained(translation_bundle):
    translator = Translator.load(translation_bundle)
    with pytest.raises(TypeError, match="sentence 2 is a bytes, not str"):
        translator.translate(["el gato", b"el perro"])
    with pytest.raises(ValueError, match="beam must be an integer >= 1, got 0"):
        translator.translate(["el gato"], beam=0)
    with pytest.raises(ValueError, match="not both"):
        translator.translate(["el gato"], beam=3, sample=True)
    with pytest.raises(ValueError, match="n_best 4 needs a beam at least as wide"):
        translator.translate(["el gato"], beam=2, n_best=4)
    with pytest.raises(ValueError, match="device must be cpu or cuda"):
        Translator.load(translation_bundle, device="tpu")
