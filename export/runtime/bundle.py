"""The bundle: a directory the runtime loads. Reading and checking it needs no torch.

``model.json`` holds the format version, the kind (see :data:`LOADERS`), the
special token ids, the model's sizes, the ONNX graphs with their input and output names, the
tokenizer specs, and the sha256 of every other file in the bundle. See docs/bundle-format.md.
"""

from __future__ import annotations

import hashlib
import json
import os

FORMAT_NAME = "rnn-seq-bundle"
FORMAT_VERSION = 1
MANIFEST = "model.json"
# the kinds of model a bundle can hold, and the runtime class that loads each
LOADERS = {
    "translation": "Translator",
    "language_model": "Generator",
    "classification": "Classifier",
    "forecasting": "Forecaster",
}
KINDS = tuple(LOADERS)


class BundleError(ValueError):
    """A bundle that cannot be used; the message names the bundle and what is wrong."""


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(directory: str, manifest: dict) -> dict:
    """Add the checksum of every file in ``directory`` and write ``model.json``, atomically."""
    files = sorted(
        name
        for name in os.listdir(directory)
        if name != MANIFEST
        and os.path.isfile(os.path.join(directory, name))
        and not name.endswith(".tmp")
    )
    manifest = dict(manifest, format=FORMAT_NAME, format_version=FORMAT_VERSION)
    manifest["files"] = {name: sha256_of(os.path.join(directory, name)) for name in files}
    temporary = os.path.join(directory, MANIFEST + ".tmp")
    with open(temporary, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2, ensure_ascii=False)
        f.write("\n")
    os.replace(temporary, os.path.join(directory, MANIFEST))
    return manifest


def read_manifest(directory: str, expected_kind: str | None = None, verify: bool = True) -> dict:
    """Read and check ``model.json``: format, version, kind, and (with ``verify``) that every
    listed file is present with the recorded sha256. Raises :class:`BundleError`."""
    path = os.path.join(directory, MANIFEST)
    if not os.path.isdir(directory):
        raise BundleError(f"{directory}: no such bundle directory")
    if not os.path.isfile(path):
        raise BundleError(f"{directory}: not a bundle ({MANIFEST} is missing)")
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BundleError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise BundleError(f"{path}: not a {FORMAT_NAME} manifest")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise BundleError(
            f"{path}: bundle format version {version!r}; this runtime reads version "
            f"{FORMAT_VERSION}. Re-export the checkpoint with this version of the toolkit."
        )
    kind = manifest.get("kind")
    if kind not in KINDS:
        raise BundleError(f"{path}: unknown bundle kind {kind!r} (expected one of {KINDS})")
    if expected_kind is not None and kind != expected_kind:
        raise BundleError(
            f"{directory}: this bundle holds a {kind} model, not a {expected_kind} model; "
            f"load it with {LOADERS[kind]}.load"
        )
    files = manifest.get("files", {})
    if not isinstance(files, dict):
        raise BundleError(f"{path}: files must map file names to sha256 checksums")
    if verify:
        for name, checksum in files.items():
            file_path = os.path.join(directory, name)
            if not os.path.isfile(file_path):
                raise BundleError(f"{directory}: {name} is missing from the bundle")
            if sha256_of(file_path) != checksum:
                raise BundleError(
                    f"{file_path}: checksum mismatch (the file is corrupted or was changed "
                    "after export)"
                )
    return manifest


def require_keys(manifest: dict, directory: str, kind: str, specs) -> None:
    """Check that ``model.json`` has every ``(section, key, type)`` of ``specs`` (``key`` None:
    ``section`` is a top-level key of that type). Raises :class:`BundleError` naming the first
    missing or mistyped entry, so a malformed manifest never surfaces as a KeyError later."""
    for section, key, expected_type in specs:
        name = section if key is None else f"{section}.{key}"
        container = manifest if key is None else manifest.get(section)
        field = section if key is None else key
        if not isinstance(container, dict) or field not in container:
            raise BundleError(
                f"{directory}: model.json lacks {name}; not a {kind} bundle written by "
                "python -m export"
            )
        value = container[field]
        if not isinstance(value, expected_type) or isinstance(value, bool):
            raise BundleError(
                f"{directory}: model.json {name} should be a {expected_type.__name__}, "
                f"not {type(value).__name__} {value!r}"
            )
