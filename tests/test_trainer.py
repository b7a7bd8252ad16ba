"""seq2seq/trainer.py and checkpoint.py: resume is exact, a non-finite loss stops training with
the last good checkpoint intact, checkpoints are written atomically, Ctrl-C saves and exits
cleanly, and the mixed-precision choices behave on CPU."""

from __future__ import annotations

import hashlib
import os
import signal

import pytest
import torch
from conftest import read_metrics, tiny_config, train_argv, word_tokenizers, write_corpus

from seq2seq.core import checkpoint as checkpoint_module
from seq2seq.core import hardware as hardware_module
from seq2seq.core.checkpoint import checkpoint_payload, load_checkpoint, save_checkpoint
from seq2seq.core.hardware import cpu_has_native_bf16, resolve_amp, resolve_device
from seq2seq.core.trainer import Trainer, TrainingDiverged
from seq2seq.task import TranslationTask
from seq2seq.train import main as train_main

# several batches per epoch (about 4 sentences each), dropout on: resume must restore the data
# position and every random number generator to reproduce the run
RESUME_SETTINGS = dict(
    batch_tokens=80,
    dropout=0.2,
    embedding_dropout=0.1,
    eval_every=4,
    label_smoothing=0.1,
    no_export=None,
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("data"))


def argv_for(corpus, run, **settings) -> list[str]:
    settings = dict(RESUME_SETTINGS, **settings)
    flags = [f"--{k.replace('_', '-')}" for k, v in settings.items() if v is None]
    return train_argv(corpus, run, **{k: v for k, v in settings.items() if v is not None}) + flags


def sha256(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def leftovers(run) -> list[str]:
    return [name for name in os.listdir(run) if ".tmp" in name]


def comparable(rows: list[dict]) -> list[dict]:
    """Metrics rows without the timing fields that differ between runs."""
    return [
        {k: v for k, v in row.items() if k not in ("elapsed", "tokens_per_s", "eval_seconds")}
        for row in rows
    ]


@pytest.mark.slow
def test_resume_reproduces_an_uninterrupted_run_exactly(corpus, tmp_path):
    whole, split = tmp_path / "whole", tmp_path / "split"
    assert train_main(argv_for(corpus, whole, max_steps=14)) == 0
    assert train_main(argv_for(corpus, split, max_steps=4)) == 0
    first = load_checkpoint(str(split / "last.pt"))["progress"]
    assert first["step"] == 4 and first["batch_index"] > 0  # stopped inside an epoch
    assert train_main(argv_for(corpus, split, max_steps=14) + ["--resume"]) == 0

    expected = comparable(read_metrics(whole))
    assert [row["step"] for row in expected] == list(range(1, 15))
    assert max(row["epoch"] for row in expected) >= 3  # crossed epoch boundaries
    assert comparable(read_metrics(split)) == expected  # losses equal to the last bit
    assert comparable(read_metrics(split, "valid")) == comparable(read_metrics(whole, "valid"))
    a, b = load_checkpoint(str(whole / "last.pt")), load_checkpoint(str(split / "last.pt"))
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name
    assert a["progress"]["step"] == b["progress"]["step"] == 14
    assert leftovers(whole) == leftovers(split) == []


def test_resume_with_a_different_model_is_refused(corpus, tmp_path, capsys):
    run = tmp_path / "run"
    assert train_main(argv_for(corpus, run, max_steps=2)) == 0
    argv = argv_for(corpus, run, max_steps=4, hidden_size=16, embedding_size=16) + ["--resume"]
    assert train_main(argv) == 2
    assert "does not fit the configured model" in capsys.readouterr().err


def test_a_nan_loss_stops_training_and_leaves_last_pt_as_it_was(
    corpus, tmp_path, monkeypatch, capsys
):
    run = tmp_path / "run"
    original = TranslationTask.train_step
    seen = {"calls": 0}

    def poisoned(self, batch):
        loss, stats = original(self, batch)
        seen["calls"] += 1
        if seen["calls"] == 4:  # update 4; last.pt was saved at update 2
            seen["last_pt"] = sha256(run / "last.pt")
            return loss * float("nan"), stats
        return loss, stats

    monkeypatch.setattr(TranslationTask, "train_step", poisoned)
    assert train_main(argv_for(corpus, run, max_steps=10, eval_every=2)) == 1
    err = capsys.readouterr().err
    assert "the training loss became nan at update 4" in err
    assert "still holds the last good state" in err
    assert sha256(run / "last.pt") == seen["last_pt"]
    assert load_checkpoint(str(run / "last.pt"))["progress"]["step"] == 2
    assert [row["step"] for row in read_metrics(run)] == [1, 2, 3]
    assert leftovers(run) == []


def test_a_failed_checkpoint_write_keeps_the_old_file_and_leaves_no_temporary(
    tmp_path, monkeypatch
):
    path = tmp_path / "last.pt"
    save_checkpoint(checkpoint_payload("translation", {}, {"w": torch.ones(3)}, {}), str(path))
    before = sha256(path)

    def failing_save(payload, f):
        f.write(b"half a checkpoint")
        raise OSError("No space left on device")

    monkeypatch.setattr(checkpoint_module.torch, "save", failing_save)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(checkpoint_payload("translation", {}, {"w": torch.zeros(3)}, {}), str(path))
    assert sha256(path) == before
    assert os.listdir(tmp_path) == ["last.pt"]
    assert torch.equal(load_checkpoint(str(path))["model"]["w"], torch.ones(3))


def test_damaged_checkpoints_are_reported(tmp_path):
    with pytest.raises(ValueError, match="no such checkpoint"):
        load_checkpoint(str(tmp_path / "missing.pt"))
    (tmp_path / "junk.pt").write_bytes(b"\x00" * 10)
    with pytest.raises(ValueError, match="junk.pt: not a readable checkpoint"):
        load_checkpoint(str(tmp_path / "junk.pt"))
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="other.pt: not a checkpoint of this toolkit"):
        load_checkpoint(str(tmp_path / "other.pt"))


def test_sigterm_saves_last_pt_and_exits_0(corpus, tmp_path, monkeypatch, capsys):
    """A scheduler's stop: the update in flight finishes, last.pt is saved, exit status 0."""
    run = tmp_path / "run"
    original = TranslationTask.train_step
    seen = {"calls": 0}

    def terminated(self, batch):
        seen["calls"] += 1
        if seen["calls"] == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return original(self, batch)

    monkeypatch.setattr(TranslationTask, "train_step", terminated)
    handler_before = signal.getsignal(signal.SIGTERM)
    assert train_main(argv_for(corpus, run, max_steps=10)) == 0
    assert signal.getsignal(signal.SIGTERM) is handler_before
    out = capsys.readouterr().out
    assert "SIGTERM: finishing this update, saving last.pt" in out and "--resume" in out
    assert load_checkpoint(str(run / "last.pt"))["progress"]["step"] == 2
    assert leftovers(run) == []


def test_ctrl_c_saves_last_pt_and_exits_cleanly(corpus, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    original = TranslationTask.train_step
    seen = {"calls": 0}

    def interrupted(self, batch):
        seen["calls"] += 1
        if seen["calls"] == 3:
            os.kill(os.getpid(), signal.SIGINT)  # as if the user pressed Ctrl-C mid-update
        return original(self, batch)

    monkeypatch.setattr(TranslationTask, "train_step", interrupted)
    handler_before = signal.getsignal(signal.SIGINT)
    assert train_main(argv_for(corpus, run, max_steps=10)) == 130
    assert signal.getsignal(signal.SIGINT) is handler_before  # the trainer's handler is gone
    out = capsys.readouterr().out
    assert "Ctrl-C: finishing this update, saving last.pt" in out
    assert "--resume" in out
    progress = load_checkpoint(str(run / "last.pt"))["progress"]
    assert progress["step"] == 3  # the update in flight was finished and saved
    assert not (run / "best.pt").exists()  # no evaluation on the way out
    assert leftovers(run) == []

    monkeypatch.setattr(TranslationTask, "train_step", original)
    assert train_main(argv_for(corpus, run, max_steps=5) + ["--resume"]) == 0
    assert [row["step"] for row in read_metrics(run)] == [1, 2, 3, 4, 5]


# ----------------------------------------------------------------------------- devices, AMP


def test_resolve_amp_choices_on_cpu():
    cpu = torch.device("cpu")
    assert resolve_amp("off", cpu) is None
    # auto: bfloat16 where the CPU runs it natively, full precision elsewhere
    assert resolve_amp("auto", cpu) is (torch.bfloat16 if cpu_has_native_bf16() else None)
    if cpu_has_native_bf16():
        assert resolve_amp("bf16", cpu) is torch.bfloat16
    with pytest.raises(ValueError, match="amp fp16 needs a CUDA device; on CPU use bf16 or off"):
        resolve_amp("fp16", cpu)
    assert resolve_device("cpu") == cpu
    if not torch.cuda.is_available():
        assert resolve_device("auto") == cpu
        with pytest.raises(ValueError, match="torch sees no CUDA GPU"):
            resolve_device("cuda")


def test_fp16_on_cpu_is_refused_by_the_command(corpus, tmp_path, capsys):
    assert train_main(argv_for(corpus, tmp_path / "run", amp="fp16", device="cpu")) == 2
    assert "amp fp16 needs a CUDA device" in capsys.readouterr().err


def test_auto_is_full_precision_on_a_cpu_without_native_bfloat16(monkeypatch):
    monkeypatch.setattr(hardware_module, "cpu_has_native_bf16", lambda: False)
    assert resolve_amp("auto", torch.device("cpu")) is None
    monkeypatch.setattr(hardware_module, "cpu_has_native_bf16", lambda: True)
    assert resolve_amp("auto", torch.device("cpu")) is torch.bfloat16


def test_bf16_on_a_cpu_without_native_bfloat16_is_refused(monkeypatch):
    monkeypatch.setattr(hardware_module, "cpu_has_native_bf16", lambda: False)
    with pytest.raises(ValueError, match="amp bf16 needs a CPU with native bfloat16"):
        resolve_amp("bf16", torch.device("cpu"))


def test_bf16_on_a_cpu_without_native_bfloat16_is_refused_by_the_command(
    corpus, tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr(hardware_module, "cpu_has_native_bf16", lambda: False)
    assert train_main(argv_for(corpus, tmp_path / "run", amp="bf16", device="cpu")) == 2
    assert "amp bf16 needs a CPU with native bfloat16" in capsys.readouterr().err


needs_bf16 = pytest.mark.skipif(
    not cpu_has_native_bf16(), reason="this CPU has no native bfloat16 (AVX-512 BF16 or AMX)"
)


def make_trainer(tmp_path, amp: str) -> Trainer:
    from conftest import random_model

    source, target = word_tokenizers()
    config = tiny_config(amp=amp, batch_tokens=200, progress=False, max_steps=2)
    model = random_model(config, source, target, scale=0.1).train()
    pairs = ["el gato come", "la casa grande", "un perro azul corre", "el perro bebe"]
    english = ["the cat eats", "the big house", "a blue dog runs", "the dog drinks"]
    task = TranslationTask(
        config, model, source, target, pairs, english, pairs, english, log=lambda message: None
    )
    return Trainer(task, config, str(tmp_path), log=lambda message: None)


@pytest.mark.parametrize("amp", ["off", pytest.param("bf16", marks=needs_bf16)])
def test_a_training_step_on_cpu_with_and_without_bf16_autocast(tmp_path, amp):
    trainer = make_trainer(tmp_path, amp)
    assert trainer.amp_dtype == (torch.bfloat16 if amp == "bf16" else None)
    assert not trainer.scaler.is_enabled()  # the grad scaler is only for fp16
    before = {n: p.detach().clone() for n, p in trainer.task.model.named_parameters()}
    batch = trainer.task.epoch_batches(1)[0]
    stats = trainer._train_step(batch)
    assert stats["targets"] > 0 and stats["loss_sum"] > 0 and stats["lr"] > 0
    changed = [n for n, p in trainer.task.model.named_parameters() if not torch.equal(p, before[n])]
    assert len(changed) > len(before) // 2
    assert all(p.dtype == torch.float32 for p in trainer.task.model.parameters())


@needs_bf16
def test_bf16_training_runs_through_the_command(corpus, tmp_path):
    run = tmp_path / "run"
    assert train_main(argv_for(corpus, run, amp="bf16", max_steps=3, eval_every=3)) == 0
    rows = read_metrics(run)
    assert [row["step"] for row in rows] == [1, 2, 3]
    assert all(0 < row["loss"] < 20 for row in rows)
    (dev,) = read_metrics(run, "valid")
    assert 0 <= dev["bleu"] <= 100


def test_a_diverging_trainer_raises_training_diverged(tmp_path, monkeypatch):
    trainer = make_trainer(tmp_path, "off")
    monkeypatch.setattr(
        trainer.task,
        "train_step",
        lambda batch: (torch.tensor(float("inf"), requires_grad=True), {"targets": 1}),
    )
    with pytest.raises(TrainingDiverged, match="became inf at update 1"):
        trainer.train()
    assert not os.path.exists(trainer.last_path)


class Killed(BaseException):
    """Stands in for kill -9: nothing after it runs, no handler, no save."""


def test_resume_after_a_kill_between_checkpoints_leaves_one_history(corpus, tmp_path, monkeypatch):
    run = tmp_path / "run"
    original = Trainer._train_step

    def dies_at_update_7(self, batch):
        if self.step == 6:  # last.pt holds update 4; updates 5 and 6 are logged, then lost
            raise Killed
        return original(self, batch)

    monkeypatch.setattr(Trainer, "_train_step", dies_at_update_7)
    with pytest.raises(Killed):
        train_main(argv_for(corpus, run, max_steps=10, eval_every=4))
    assert [row["step"] for row in read_metrics(run)] == [1, 2, 3, 4, 5, 6]
    assert load_checkpoint(str(run / "last.pt"))["progress"]["step"] == 4
    monkeypatch.setattr(Trainer, "_train_step", original)
    assert train_main(argv_for(corpus, run, max_steps=10, eval_every=4) + ["--resume"]) == 0
    assert [row["step"] for row in read_metrics(run)] == list(range(1, 11))
    assert [row["step"] for row in read_metrics(run, "valid")] == [4, 8, 10]
    # and the history is the one an uninterrupted run writes
    whole = tmp_path / "whole"
    assert train_main(argv_for(corpus, whole, max_steps=10, eval_every=4)) == 0
    assert comparable(read_metrics(run)) == comparable(read_metrics(whole))


@pytest.mark.slow
def test_kill_9_between_checkpoints_then_resume_logs_each_step_once(corpus, tmp_path):
    """A real SIGKILL of a training process, then --resume: one metrics line per update."""
    import json
    import subprocess
    import sys
    import time

    from conftest import ROOT

    run = tmp_path / "run"
    argv = argv_for(corpus, run, max_steps=100000, eval_every=25)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "seq2seq.train", *argv],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    metrics = run / "metrics.jsonl"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            lines = metrics.read_text().splitlines() if metrics.exists() else []
            steps = [json.loads(line)["step"] for line in lines[:-1]]  # the last may be torn
            if steps and max(steps) >= 28:  # past the checkpoint at 25
                break
            time.sleep(0.01)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    saved = load_checkpoint(str(run / "last.pt"))["progress"]["step"]
    logged = max(row["step"] for row in read_metrics(run))
    assert logged > saved  # killed between two checkpoints: lines past last.pt exist
    target = logged + 5
    resume = argv_for(corpus, run, max_steps=target, eval_every=25) + ["--resume"]
    assert train_main(resume) == 0
    assert [row["step"] for row in read_metrics(run)] == list(range(1, target + 1))
