"""The classification commands end to end: ``classify.train`` (a tiny run that memorises its
data, export, and a resumed run equal to an uninterrupted one), ``python -m export`` on its
checkpoint, and ``classify.predict`` / ``classify.evaluate`` in processes where torch cannot be
imported."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from classify_helpers import TINY_FLAGS, labelled_rows, write_tsv
from conftest import ROOT

from classify.train import main as train_main
from export.runtime import BundleError, Classifier

ROWS = labelled_rows(36)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    directory = tmp_path_factory.mktemp("data")
    return {
        "train": write_tsv(directory / "train.tsv", ROWS),
        "valid": write_tsv(directory / "valid.tsv", ROWS[:12]),
    }


def train_argv(data, run_dir, steps: int, *extra) -> list[str]:
    return [
        "--train", data["train"], "--valid", data["valid"], "--out", str(run_dir),
        "--max-steps", str(steps), "--dropout", "0.1", "--learning-rate", "0.01", *TINY_FLAGS,
        *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, data):
    """60 updates on 36 texts (5 batches an epoch), exported at the end."""
    run_dir = tmp_path_factory.mktemp("runs") / "full"
    assert train_main(train_argv(data, run_dir, 60, "--eval-every", "12")) == 0
    return run_dir


def read_metrics(run_dir) -> list[dict]:
    with open(os.path.join(run_dir, "metrics.jsonl"), encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    drop = ("elapsed", "tokens_per_s", "eval_seconds")
    return [{k: v for k, v in row.items() if k not in drop} for row in rows]


def test_training_memorises_a_tiny_set_and_writes_a_run(trained_run, capsys):
    for name in ("config.yaml", "metrics.jsonl", "curves.png", "last.pt", "best.pt"):
        assert (trained_run / name).exists(), name
    valid = [r for r in read_metrics(trained_run) if r["split"] == "valid"]
    assert [r["step"] for r in valid] == [12, 24, 36, 48, 60]
    classifier = Classifier.load(str(trained_run / "bundle"))
    assert classifier.labels == ["animals", "food", "weather"]
    predicted = [p[0].label for p in classifier.predict([text for _, text in ROWS])]
    assert predicted == [label for label, _ in ROWS]  # every training text memorised


def test_resume_equals_an_uninterrupted_run(trained_run, data, tmp_path):
    from seq2seq.core.checkpoint import load_checkpoint

    run_dir = tmp_path / "resumed"
    argv = train_argv(data, run_dir, 12, "--eval-every", "12", "--no-export")
    assert train_main(argv) == 0
    assert load_checkpoint(str(run_dir / "last.pt"))["progress"]["batch_index"] > 0  # mid-epoch
    assert train_main(["--out", str(run_dir), "--resume", "--max-steps", "60", "--no-export"]) == 0
    assert read_metrics(run_dir) == read_metrics(trained_run)
    a = load_checkpoint(str(run_dir / "last.pt"))["model"]
    b = load_checkpoint(str(trained_run / "last.pt"))["model"]
    assert all(a[name].equal(b[name]) for name in a)


def test_accumulating_two_batches_runs_and_class_weights_balance(data, tmp_path):
    run_dir = tmp_path / "acc"
    extra = ("--accumulate", "2", "--class-weights", "balanced", "--no-export")
    assert train_main(train_argv(data, run_dir, 4, *extra)) == 0
    rows = [r for r in read_metrics(run_dir) if r["split"] == "train"]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]


def test_without_valid_a_random_share_is_held_out(data, tmp_path, capsys):
    argv = train_argv(data, tmp_path / "held", 2, "--no-export", "--valid-fraction", "0.25")
    argv.remove("--valid")
    argv.remove(data["valid"])
    assert train_main(argv) == 0
    assert "9 of 36 texts held out at random" in capsys.readouterr().out


def test_training_refuses_bad_data_with_the_file_and_line(data, tmp_path, capsys):
    valid = write_tsv(tmp_path / "v.tsv", [("animals", "cat"), ("sports", "ball")])
    argv = train_argv(data, tmp_path / "bad", 2)
    argv[argv.index(data["valid"])] = valid
    assert train_main(argv) == 2
    assert f"error: {valid}: line 3: label 'sports' is not among the training" in (
        capsys.readouterr().err
    )
    empty = tmp_path / "e.tsv"
    empty.write_text("label\ttext\nfood\tbread\nfood\t\n", encoding="utf-8")
    argv[argv.index(valid)] = str(empty)
    assert train_main(argv) == 2
    assert f"error: {empty}: line 3: the text is empty" in capsys.readouterr().err


def test_export_command_and_int8(trained_run, tmp_path):
    from export.__main__ import main as export_main

    out = tmp_path / "int8"
    assert export_main(["--checkpoint", str(trained_run / "best.pt"), "--out", str(out),
                        "--quantize", "int8"]) == 0  # fmt: skip
    texts = [text for _, text in ROWS]
    fp32 = Classifier.load(str(trained_run / "bundle")).probabilities(texts)
    int8 = Classifier.load(str(out))
    assert int8.manifest["graphs"]["quantized"] == "int8"
    assert abs(int8.probabilities(texts) - fp32).max() < 0.1


def test_no_arguments_means_the_shipped_demo():
    from classify.data import read_labelled
    from classify.train import DEMO_OUT, classification_command

    command = classification_command()
    config, out, demo = command.build_config(command.parse_args([]))
    assert demo and out == DEMO_OUT
    train, valid = read_labelled(config.train), read_labelled(config.valid)
    assert 3000 < len(train) < 8000 and 300 < len(valid) < 2000
    assert set(valid.labels) <= set(train.labels) and len(set(train.labels)) == 8
    assert os.path.getsize(config.train) + os.path.getsize(config.valid) < 400_000


# ----------------------------------------------------------------------------- without torch


@pytest.fixture(scope="module")
def no_torch_env(tmp_path_factory) -> dict:
    fake = tmp_path_factory.mktemp("fake_site")
    (fake / "torch").mkdir()
    (fake / "torch" / "__init__.py").write_text(
        'raise ImportError("torch is not installed (test: the runtime must not need it)")\n',
        encoding="utf-8",
    )
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(fake), str(ROOT)])}


def run_python(args, env, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], env=env, cwd=ROOT, input=stdin, text=True,
        capture_output=True, timeout=120,
    )  # fmt: skip


def test_predict_streams_tsv_without_torch(trained_run, no_torch_env):
    bundle = str(trained_run / "bundle")
    texts = [text for _, text in ROWS[:5]] + [""]
    stdin = "".join(t + "\n" for t in texts)
    result = run_python(["-m", "classify.predict", "--bundle", bundle, "--batch-size", "2"],
                        no_torch_env, stdin)  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    expected = Classifier.load(bundle).predict(texts)
    assert len(lines) == len(texts)
    for line, (prediction,) in zip(lines, expected):
        label, probability = line.split("\t")
        assert label == prediction.label and float(probability) == pytest.approx(
            prediction.probability, abs=1e-4
        )
    result = run_python(
        ["-m", "classify.predict", "--bundle", bundle, "--top-k", "3", "--threshold", "0.2"],
        no_torch_env,
        stdin,
    )
    assert result.returncode == 0, result.stderr
    for line in result.stdout.splitlines():
        fields = line.split("\t") if line else []
        assert len(fields) % 2 == 0 and all(float(p) >= 0.2 for p in fields[1::2])


def test_evaluate_without_torch_gives_json_and_a_plot(trained_run, data, tmp_path, no_torch_env):
    bundle = str(trained_run / "bundle")
    plot = tmp_path / "confusion.png"
    result = run_python(
        ["-m", "classify.evaluate", "--bundle", bundle, "--data", data["train"], "--plot",
         str(plot)], no_torch_env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    scores = json.loads(result.stdout)
    assert scores["accuracy"] == 1.0 and scores["macro_f1"] == 1.0
    assert scores["per_class"]["food"]["support"] == 12
    assert scores["confusion_matrix"] == [[12, 0, 0], [0, 12, 0], [0, 0, 12]]
    assert plot.stat().st_size > 1000


def test_commands_report_bad_bundles_and_data_in_one_line(
    trained_run, data, tmp_path, no_torch_env
):
    result = run_python(["-m", "classify.predict", "--bundle", str(tmp_path)], no_torch_env, "")
    assert result.returncode == 2 and f"error: {tmp_path}: not a bundle" in result.stderr
    unseen = write_tsv(tmp_path / "u.tsv", [("food", "bread"), ("sports", "ball")])
    bundle = str(trained_run / "bundle")
    result = run_python(["-m", "classify.evaluate", "--bundle", bundle, "--data", unseen],
                        no_torch_env)  # fmt: skip
    assert result.returncode == 2
    assert f"error: {unseen}: line 3: label 'sports' is not among the model's labels" in (
        result.stderr
    )
    result = run_python(["-m", "classify.predict", "--bundle", bundle, "--top-k", "9"],
                        no_torch_env, "x\n")  # fmt: skip
    assert result.returncode == 2 and "top_k must be in [1, 3]" in result.stderr


def test_bundle_errors_as_the_other_kinds(trained_run, tmp_path):
    copy = tmp_path / "bundle"
    shutil.copytree(trained_run / "bundle", copy)
    with (copy / "classifier.onnx").open("ab") as f:
        f.write(b"\0")
    with pytest.raises(BundleError, match="checksum mismatch"):
        Classifier.load(str(copy))
    from export.runtime import Generator

    with pytest.raises(BundleError, match="holds a classification model"):
        Generator.load(str(trained_run / "bundle"))


# ----------------------------------------------------------------------------- torchrun


@pytest.mark.timeout(300)
def test_two_processes_take_the_updates_of_one_process_accumulating_two(data, tmp_path):
    """36 texts in batches of 8: 5 batches an epoch, so the second process reads a dummy."""
    two, one = tmp_path / "two", tmp_path / "one"
    quiet = ("--no-export", "--dropout", "0", "--embedding-dropout", "0", "--token-dropout", "0")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "classify.train", *train_argv(data, two, 6, *quiet)]  # fmt: skip
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True,
                          timeout=240)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert train_main(train_argv(data, one, 6, "--accumulate", "2", *quiet)) == 0
    rows_two, rows_one = read_metrics(two), read_metrics(one)
    assert [r["epoch"] for r in rows_two if r["split"] == "train"] == [1, 1, 1, 2, 2, 2]
    for a, b in zip(rows_two, rows_one, strict=True):
        for key in ("loss", "grad_norm", "macro_f1", "nll"):
            if key in a:
                assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-6), (key, a, b)
