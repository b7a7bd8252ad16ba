"""The runtime needs no torch: export.runtime.Translator and ``python -m seq2seq.translate
--bundle`` work in a process where ``import torch`` fails, and the base install does not
depend on torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, SENTENCES

from export.runtime import Translator

INPUT = [SENTENCES[1], "", SENTENCES[3], SENTENCES[0]]


@pytest.fixture(scope="module")
def no_torch_env(tmp_path_factory) -> dict:
    """Environment for a Python whose ``import torch`` raises ImportError."""
    fake = tmp_path_factory.mktemp("fake_site")
    (fake / "torch").mkdir()
    (fake / "torch" / "__init__.py").write_text(
        'raise ImportError("torch is not installed (test: the runtime must not need it)")\n',
        encoding="utf-8",
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(fake), str(ROOT)])
    return env


def run_python(args, env, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        env=env,
        cwd=ROOT,
        input=stdin,
        text=True,
        capture_output=True,
        timeout=120,
    )


def test_the_fake_torch_really_is_unimportable(no_torch_env):
    result = run_python(["-c", "import torch"], no_torch_env)
    assert result.returncode != 0 and "torch is not installed" in result.stderr


def test_packages_import_without_torch(no_torch_env):
    code = (
        "import sys, export, seq2seq, export.runtime, export.runtime.search, "
        "export.runtime.bundle, export.runtime.tokenizers, seq2seq.translate, seq2seq.evaluate, "
        "generate.sample, generate.evaluate; assert 'torch' not in sys.modules"
    )
    result = run_python(["-c", code], no_torch_env)
    assert result.returncode == 0, result.stderr


def test_translator_runs_without_torch(translation_bundle, no_torch_env):
    code = (
        "import json, sys\n"
        "from export.runtime import Translator\n"
        f"translator = Translator.load({translation_bundle!r})\n"
        f"sentences = {INPUT!r}\n"
        "out = [[t.text for t in translator.translate(sentences, beam=b)] for b in (1, 3)]\n"
        "assert 'torch' not in sys.modules\n"
        "print(json.dumps(out))\n"
    )
    result = run_python(["-c", code], no_torch_env)
    assert result.returncode == 0, result.stderr
    translator = Translator.load(translation_bundle)
    expected = [[t.text for t in translator.translate(INPUT, beam=b)] for b in (1, 3)]
    assert json.loads(result.stdout) == expected


def test_translate_command_runs_without_torch(translation_bundle, no_torch_env):
    stdin = "".join(line + "\n" for line in INPUT)
    result = run_python(
        ["-m", "seq2seq.translate", "--bundle", translation_bundle, "--beam", "3"],
        no_torch_env,
        stdin,
    )
    assert result.returncode == 0, result.stderr
    expected = [t.text for t in Translator.load(translation_bundle).translate(INPUT, beam=3)]
    assert result.stdout.split("\n") == [*expected, ""]
    assert result.stdout.split("\n")[1] == ""  # an empty line gives an empty line

    result = run_python(
        ["-m", "seq2seq.translate", "--bundle", translation_bundle, "--beam", "3", "--n-best", "2"],
        no_torch_env,
        stdin,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2 * len(INPUT)
    assert [line.split(" ||| ")[0] for line in lines] == ["0", "0", "1", "1", "2", "2", "3", "3"]
    assert lines[0].split(" ||| ")[1] == expected[0]
    float(lines[0].split(" ||| ")[2])


def test_translate_command_reports_a_bad_bundle_and_bad_input(
    tmp_path, translation_bundle, no_torch_env
):
    result = run_python(["-m", "seq2seq.translate", "--bundle", str(tmp_path)], no_torch_env, "")
    assert result.returncode == 2
    assert f"error: {tmp_path}: not a bundle" in result.stderr
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("el gato\nca\u00f1a\n".encode("latin-1"))
    result = run_python(
        ["-m", "seq2seq.translate", "--bundle", translation_bundle, "--input", str(bad)],
        no_torch_env,
    )
    assert result.returncode == 2
    assert f"{bad}: line 2 is not valid UTF-8" in result.stderr


def test_translate_with_checkpoint_equals_bundle(exported_lstm, tmp_path):
    from seq2seq.translate import main as translate_main

    source = tmp_path / "source.txt"
    source.write_text("".join(line + "\n" for line in SENTENCES), encoding="utf-8")
    outputs = {}
    for flag, model in (
        ("--bundle", exported_lstm.bundle),
        ("--checkpoint", exported_lstm.checkpoint),
    ):
        out = tmp_path / f"{flag[2:]}.txt"
        argv = [flag, model, "--beam", "4", "--input", str(source), "--output", str(out)]
        assert translate_main(argv) == 0
        outputs[flag] = out.read_text(encoding="utf-8")
    assert outputs["--bundle"] == outputs["--checkpoint"]
    assert len(outputs["--bundle"].splitlines()) == len(SENTENCES)


def test_base_dependencies_do_not_include_torch():
    tomllib = pytest.importorskip("tomllib")
    with open(Path(ROOT) / "pyproject.toml", "rb") as f:
        project = tomllib.load(f)["project"]
    names = [
        dependency.split(">")[0].split("=")[0].split("<")[0].split("[")[0].strip().lower()
        for dependency in project["dependencies"]
    ]
    assert "torch" not in names
    assert {"numpy", "onnxruntime", "sentencepiece"} <= set(names)
    train = [d.lower() for d in project["optional-dependencies"]["train"]]
    assert any(d.startswith("torch") for d in train)
