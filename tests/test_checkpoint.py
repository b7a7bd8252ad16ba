"""seq2seq/core/checkpoint.py: one payload contract, safe loading (weights_only), a format
check with clear errors, and old checkpoints behind an explicit trust flag."""

from __future__ import annotations

import os
import random
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import ROOT

from seq2seq.core.checkpoint import (
    CHECKPOINT_FORMAT,
    capture_rng_state,
    checkpoint_payload,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)


class Payload:
    """Stands in for any object a pickle can carry (and run code from when loaded)."""

    def __reduce__(self):
        return (os.getcwd, ())


def write(path, payload) -> str:
    save_checkpoint(payload, str(path))
    return str(path)


def test_a_payload_holds_plain_data_and_loads_with_weights_only(tmp_path):
    payload = checkpoint_payload(
        "translation",
        {"hidden_size": 8, "adam_betas": (0.9, 0.99)},
        {"w": torch.ones(2)},
        {"source_tokenizer": {"kind": "sentencepiece", "model_proto": b"\x00\x01"}},
        progress={"step": 3},
        training_state={
            "optimizer": {"state": {}, "param_groups": [{"lr": 0.1, "betas": (0.9, 0.99)}]},
            "schedule": {"scale": 1.0},
            "scaler": {},
            "rng": capture_rng_state(),
            "task": {"state": [torch.zeros(1, 2, 3)]},
        },
    )
    path = write(tmp_path / "last.pt", payload)
    raw = torch.load(path, weights_only=True)  # torch's own safe loader accepts it as it is
    assert raw["format"] == CHECKPOINT_FORMAT
    loaded = load_checkpoint(path)
    assert loaded["extras"]["source_tokenizer"]["model_proto"] == b"\x00\x01"
    assert loaded["progress"] == {"step": 3}
    with pytest.raises(ValueError, match="training_state lacks"):
        checkpoint_payload("translation", {}, {}, {}, training_state={"optimizer": {}})


def test_a_checkpoint_carrying_a_pickled_object_is_refused(tmp_path, capsys):
    payload = checkpoint_payload("translation", {}, {"w": torch.ones(1)}, {"hook": Payload()})
    path = write(tmp_path / "shared.pt", payload)
    with pytest.raises(ValueError) as error:
        load_checkpoint(path)
    message = str(error.value)
    assert message.startswith(f"{path}: the checkpoint holds a pickled ")
    assert "could run code when loaded, so it is refused" in message
    assert "--trust-checkpoint" in message
    # trusted explicitly: loads, after a one-line warning saying why it is dangerous
    loaded = load_checkpoint(path, trust=True)
    assert loaded["extras"]["hook"] == os.getcwd()
    warning = capsys.readouterr().err.strip().splitlines()
    assert len(warning) == 1 and "--trust-checkpoint" in warning[0]
    assert "runs any code the file carries" in warning[0]


def test_the_format_version_is_checked(tmp_path):
    base = checkpoint_payload("translation", {}, {"w": torch.ones(1)}, {})
    newer = write(tmp_path / "newer.pt", dict(base, format=CHECKPOINT_FORMAT + 1))
    with pytest.raises(ValueError, match="a newer version of the toolkit wrote it"):
        load_checkpoint(newer)
    unknown = write(tmp_path / "unknown.pt", {k: v for k, v in base.items() if k != "format"})
    with pytest.raises(ValueError, match=r"checkpoint format None, this toolkit reads formats"):
        load_checkpoint(unknown)
    old = write(tmp_path / "old.pt", dict(base, format=1))  # plain data in format 1: fine
    assert load_checkpoint(old)["format"] == 1


def test_kind_damage_and_directories_are_named(tmp_path):
    path = write(tmp_path / "lm.pt", checkpoint_payload("language_model", {}, {}, {}))
    with pytest.raises(ValueError, match="lm.pt: a language_model checkpoint, not a translation"):
        load_checkpoint(path, expected_kind="translation")
    with pytest.raises(ValueError, match="is a directory, not a checkpoint file"):
        load_checkpoint(str(tmp_path))
    (tmp_path / "torn.pt").write_bytes(open(path, "rb").read()[:50])
    with pytest.raises(ValueError, match="torn.pt: not a readable checkpoint"):
        load_checkpoint(str(tmp_path / "torn.pt"))
    torch.save("just a string", tmp_path / "text.pt")
    with pytest.raises(ValueError, match="not a checkpoint of this toolkit"):
        load_checkpoint(str(tmp_path / "text.pt"))


def test_rng_state_round_trips_through_a_safe_checkpoint(tmp_path):
    random.seed(3)
    np.random.seed(3)
    torch.manual_seed(3)
    path = write(tmp_path / "rng.pt", {"rng": capture_rng_state()})
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    restore_rng_state(torch.load(path, weights_only=True)["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_a_run_written_before_format_2_resumes_only_when_trusted(tmp_path):
    """An old last.pt pickled numpy's RNG state as an ndarray: refused by default, resumed
    with --trust-checkpoint."""
    from conftest import train_argv, write_corpus

    corpus = write_corpus(tmp_path / "data")
    run = tmp_path / "run"
    argv = train_argv(corpus, run, max_steps=2, eval_every=2) + ["--no-export"]
    command = [sys.executable, "-m", "seq2seq.train", *argv]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True)
    payload = torch.load(run / "last.pt", weights_only=True)
    name, keys, position, has_gauss, cached = payload["rng"]["numpy"]
    payload["rng"]["numpy"] = (name, np.asarray(keys, dtype=np.uint32), position, 0, 0.0)
    payload["format"] = 1
    save_checkpoint(payload, str(run / "last.pt"))

    resume = train_argv(corpus, run, max_steps=4, eval_every=2) + ["--no-export", "--resume"]
    refused = subprocess.run(
        [sys.executable, "-m", "seq2seq.train", *resume],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 2
    assert "--trust-checkpoint" in refused.stderr and "Traceback" not in refused.stderr
    trusted = subprocess.run(
        [sys.executable, "-m", "seq2seq.train", *resume, "--trust-checkpoint"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert trusted.returncode == 0, trusted.stderr
    assert load_checkpoint(str(run / "last.pt"))["progress"]["step"] == 4
    assert load_checkpoint(str(run / "last.pt"))["format"] == CHECKPOINT_FORMAT
