"""Every command's error contract (seq2seq.core.cli.run_command): a missing, unreadable,
directory or non-UTF-8 file is one `error:` line naming the file and exit status 2, never a
traceback."""

from __future__ import annotations

import pytest
from conftest import train_argv, write_corpus
from lm_helpers import export_random_lm


@pytest.fixture(scope="module")
def files(tmp_path_factory, translation_bundle):
    directory = tmp_path_factory.mktemp("files")
    latin1 = directory / "latin1.txt"
    latin1.write_bytes("el niño come\n".encode("latin-1"))
    folder = directory / "a-directory"
    folder.mkdir()
    good = directory / "good.txt"
    good.write_text("el gato\n", encoding="utf-8")
    return {
        "missing": str(directory / "missing.txt"),
        "directory": str(folder),
        "latin1": str(latin1),
        "good": str(good),
        "bundle": translation_bundle,
        "lm_bundle": export_random_lm(directory / "lm").bundle,
        "corpus": write_corpus(directory / "corpus"),
        "out": str(directory / "run"),
    }


def translate(argv):
    from seq2seq.translate import main

    return main(argv)


def evaluate(argv):
    from seq2seq.evaluate import main

    return main(argv)


def train(argv):
    from seq2seq.train import main

    return main(argv)


def lm_train(argv):
    from generate.train import main

    return main(argv)


def lm_evaluate(argv):
    from generate.evaluate import main

    return main(argv)


def sample(argv):
    from generate.sample import main

    return main(argv)


def export(argv):
    from export.__main__ import main

    return main(argv)


CASES = [
    # (command, argv built from the files, the file the message must name, words it must hold)
    (translate, lambda f, bad: ["--bundle", f["bundle"], "--input", f[bad]], None),
    (translate, lambda f, bad: ["--bundle", f[bad]], "bundle"),
    (translate, lambda f, bad: ["--checkpoint", f[bad]], "checkpoint"),
    (evaluate, lambda f, bad: ["--bundle", f["bundle"], "--src", f[bad], "--ref", f["good"]], None),
    (evaluate, lambda f, bad: ["--bundle", f["bundle"], "--src", f["good"], "--ref", f[bad]], None),
    (train, lambda f, bad: train_argv(dict(f["corpus"], src=f[bad]), f["out"]), None),
    (train, lambda f, bad: train_argv(f["corpus"], f["out"]) + ["--config", f[bad]], "config"),
    (lm_train, lambda f, bad: ["--text", f[bad], "--out", f["out"]], None),
    (lm_evaluate, lambda f, bad: ["--bundle", f["lm_bundle"], "--text", f[bad]], None),
    (lm_evaluate, lambda f, bad: ["--bundle", f[bad], "--text", f["good"]], "bundle"),
    (sample, lambda f, bad: ["--bundle", f[bad], "--prompt", "a"], "bundle"),
    (export, lambda f, bad: ["--checkpoint", f[bad], "--out", f["out"] + "-bundle"], "checkpoint"),
]


@pytest.mark.parametrize("bad", ["missing", "directory", "latin1"])
@pytest.mark.parametrize("case", range(len(CASES)), ids=lambda i: f"{CASES[i][0].__name__}-{i}")
def test_a_bad_file_is_one_error_line_naming_it(files, case, bad, capsys, monkeypatch):
    command, build, role = CASES[case]
    if role in ("bundle", "checkpoint", "config") and bad == "latin1":
        pytest.skip("bundles, checkpoints and configs are not text to decode")
    monkeypatch.setattr("sys.stdin", open(files["good"]))  # translate reads stdin otherwise
    assert command(build(files, bad)) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    assert files[bad] in lines[0], err
    assert "Traceback" not in err
    if bad == "latin1":
        assert "UTF-8" in lines[0]


def test_an_unwritable_output_is_named(files, capsys):
    argv = ["--bundle", files["bundle"], "--input", files["good"], "--output", files["directory"]]
    assert translate(argv) == 2
    err = capsys.readouterr().err
    assert f"error: {files['directory']}: cannot write" in err
