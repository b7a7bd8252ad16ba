"""The language-model commands end to end: ``generate.train`` (a tiny run, export, and a
resumed run that matches an uninterrupted one), and ``generate.sample`` and ``generate.evaluate``
in processes where torch cannot be imported."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT
from lm_helpers import TEXT

from export.runtime import Generator
from generate.data import split_tail
from generate.train import main as train_main

TRAIN_FLAGS = [
    "--amp",
    "off",
    "--hidden-size",
    "16",
    "--embedding-size",
    "8",
    "--layers",
    "2",
    "--dropout",
    "0.2",
    "--batch-size",
    "8",
    "--bptt",
    "32",
    "--valid-fraction",
    "0.2",
    "--eval-every",
    "5",
    "--log-every",
    "1",
    "--progress",
    "false",
    "--threads",
    "1",
]


def read_metrics(run_dir) -> list[dict]:
    with open(os.path.join(run_dir, "metrics.jsonl"), encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def losses(run_dir) -> dict:
    """{(split, step): the loss figures of that row}, timings left out."""
    keep = ("loss", "nll", "lr", "bits_per_char", "perplexity_per_word", "epoch")
    return {
        (r["split"], r["step"]): {k: r[k] for k in keep if k in r} for r in read_metrics(run_dir)
    }


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("text") / "text.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, text_file):
    """12 updates of a tiny char model (one epoch is 8 windows), exported at the end."""
    run_dir = tmp_path_factory.mktemp("runs") / "full"
    assert (
        train_main(
            ["--text", str(text_file), "--out", str(run_dir), "--max-steps", "12", *TRAIN_FLAGS]
        )
        == 0
    )
    return run_dir


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


def run_python(args, env, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], env=env, cwd=cwd, text=True, capture_output=True, timeout=120
    )


# ----------------------------------------------------------------------------- training


def test_training_writes_a_run_and_a_bundle(trained_run, capsys):
    for name in ("config.yaml", "metrics.jsonl", "curves.png", "last.pt", "best.pt"):
        assert (trained_run / name).exists(), name
    rows = read_metrics(trained_run)
    dev = [r for r in rows if r["split"] == "valid"]
    assert [r["step"] for r in dev] == [5, 10, 12]
    assert all({"bits_per_char", "perplexity_per_word", "nll"} <= set(r) for r in dev)
    train = [r for r in rows if r["split"] == "train"]
    assert max(r["epoch"] for r in train) == 2  # the run crossed an epoch boundary
    generator = Generator.load(str(trained_run / "bundle"))
    assert generator.manifest["level"] == "char"
    assert generator.generate("the", max_tokens=10, seed=1)[0]


def test_resume_gives_the_same_losses_as_an_uninterrupted_run(trained_run, tmp_path, text_file):
    run_dir = tmp_path / "resumed"
    common = ["--out", str(run_dir), "--no-export"]
    assert train_main(["--text", str(text_file), "--max-steps", "5", *common, *TRAIN_FLAGS]) == 0
    assert max(step for _, step in losses(run_dir)) == 5
    assert train_main(["--resume", "--max-steps", "12", *common]) == 0
    assert losses(run_dir) == losses(trained_run)


def test_the_validation_figures_of_training_and_of_the_bundle_agree(trained_run, tmp_path):
    """best.pt's dev bits per character, from torch in training, equal generate.evaluate's
    on the same text with the exported bundle."""
    from generate.evaluate import main as evaluate_main

    _, valid = split_tail(TEXT, 0.2, "text")
    valid_file = tmp_path / "valid.txt"
    valid_file.write_text(valid, encoding="utf-8")
    best = min(
        (r for r in read_metrics(trained_run) if r["split"] == "valid"),
        key=lambda r: r["bits_per_char"],
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "generate.evaluate",
            "--bundle",
            str(trained_run / "bundle"),
            "--text",
            str(valid_file),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    scores = json.loads(result.stdout)
    assert scores["bits_per_char"] == pytest.approx(best["bits_per_char"], rel=1e-5)
    assert scores["perplexity_per_word"] == pytest.approx(best["perplexity_per_word"], rel=1e-4)
    assert scores["characters"] == len(valid) == scores["tokens"]
    assert (
        evaluate_main(
            ["--bundle", str(trained_run / "bundle"), "--text", str(tmp_path / "missing.txt")]
        )
        == 2
    )


def test_training_refuses_bad_requests_clearly(trained_run, text_file, capsys):
    assert train_main(["--text", str(text_file), "--out", str(trained_run)]) == 2
    assert "already holds a run; pass --resume" in capsys.readouterr().err
    assert (
        train_main(
            [
                "--text",
                str(text_file),
                "--train",
                str(text_file),
                "--out",
                str(trained_run.parent / "x"),
            ]
        )
        == 2
    )
    assert "either --text or --train and --valid" in capsys.readouterr().err
    assert train_main(["--train", str(text_file)]) == 2
    assert "--out RUN_DIR is required" in capsys.readouterr().err
    assert train_main(["--resume", "--out", str(trained_run.parent / "nothing")]) == 2
    assert "config.yaml does not exist" in capsys.readouterr().err
    assert (
        train_main(
            ["--text", str(text_file), "--out", str(trained_run.parent / "y"), "--level", "letters"]
        )
        == 2
    )
    assert "level must be one of char, word, subword" in capsys.readouterr().err


def test_no_arguments_means_the_shipped_demo():
    from generate.train import DEMO_OUT, language_model_command
    from seq2seq.core.text_files import read_text

    command = language_model_command()
    config, out, demo = command.build_config(command.parse_args([]))
    assert demo and out == DEMO_OUT and config.level == "char"
    assert os.path.isfile(config.text) and config.text.endswith(".gz")
    size = len(read_text(config.text))
    assert 100_000 < size < 400_000


# ----------------------------------------------------------------------------- without torch


def test_the_runtime_modules_import_without_torch(no_torch_env):
    code = (
        "import sys, generate, generate.sample, generate.evaluate, generate.data, "
        "generate.scores, generate.vocabulary, export.runtime; "
        "assert 'torch' not in sys.modules"
    )
    result = run_python(["-c", code], no_torch_env)
    assert result.returncode == 0, result.stderr


def test_sample_streams_without_torch(trained_run, no_torch_env):
    bundle = str(trained_run / "bundle")
    result = run_python(
        [
            "-m",
            "generate.sample",
            "--bundle",
            bundle,
            "--prompt",
            "the king",
            "--max-tokens",
            "40",
            "--seed",
            "3",
        ],
        no_torch_env,
    )
    assert result.returncode == 0, result.stderr
    expected = "".join(
        Generator.load(bundle).stream("the king", max_tokens=40, temperature=0.8, seed=3)
    )
    assert result.stdout == "the king" + expected + "\n"


def test_sample_finds_the_newest_local_run_or_says_how_to_make_one(
    trained_run, tmp_path, no_torch_env
):
    result = run_python(["-m", "generate.sample", "--prompt", "the"], no_torch_env, cwd=tmp_path)
    assert result.returncode == 2
    assert "python -m generate.train" in result.stderr and result.stdout == ""
    shutil.copytree(trained_run / "bundle", tmp_path / "runs" / "mine" / "bundle")
    result = run_python(
        ["-m", "generate.sample", "--prompt", "the", "--max-tokens", "5", "--temperature", "0"],
        no_torch_env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("the") and len(result.stdout) == len("the") + 5 + 1
    assert os.path.join("runs", "mine", "bundle") in result.stderr


def test_sample_reports_bad_prompts_and_bundles_clearly(
    trained_run, translation_bundle, no_torch_env
):
    bundle = str(trained_run / "bundle")
    result = run_python(
        ["-m", "generate.sample", "--bundle", bundle, "--prompt", "the @king"], no_torch_env
    )
    assert result.returncode == 2 and result.stdout == ""
    assert "error: the prompt contains text this model's vocabulary lacks: '@'" in result.stderr
    result = run_python(["-m", "generate.sample", "--bundle", translation_bundle], no_torch_env)
    assert result.returncode == 2
    assert "holds a translation model, not a language_model model" in result.stderr
    result = run_python(["-m", "generate.sample", "--bundle", bundle, "--top-p", "0"], no_torch_env)
    assert result.returncode == 2 and "top_p must be in (0, 1]" in result.stderr


def test_evaluate_without_torch(trained_run, tmp_path, no_torch_env):
    text = tmp_path / "test.txt"
    text.write_text(TEXT, encoding="utf-8")
    bundle = str(trained_run / "bundle")
    result = run_python(
        ["-m", "generate.evaluate", "--bundle", bundle, "--text", str(text), "--streams", "4"],
        no_torch_env,
    )
    assert result.returncode == 0, result.stderr
    scores = json.loads(result.stdout)
    nll, tokens = Generator.load(bundle).score(TEXT, streams=4)
    assert scores["tokens"] == tokens == len(TEXT)
    assert scores["bits_per_char"] == pytest.approx(nll / tokens / 0.6931471805599453)
    assert scores["words"] == len(TEXT.split())
    assert scores["perplexity_per_word"] > 1
    result = run_python(
        ["-m", "generate.evaluate", "--bundle", str(tmp_path), "--text", str(text)], no_torch_env
    )
    assert result.returncode == 2 and "not a bundle" in result.stderr
