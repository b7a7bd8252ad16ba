"""Data-parallel training (seq2seq/core/distributed.py, update.py, the sharding in batching.py,
the trainer under torchrun) with 2 CPU processes on gloo: shards are disjoint, complete and equal;
2 processes take the updates of 1 process accumulating 2 batches, and a language model's 2 x B
rows those of 1 x 2B; a run stopped and resumed under 2 processes equals a straight one (and
continues on 1 process); early stopping, --max-minutes and a signal to one process end every
process together; two torchrun launches meet as two machines. Every launch has a timeout, so a
hang fails the test instead of blocking the suite."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch
from conftest import ROOT, read_metrics, tiny_config, train_argv, word_tokenizers, write_corpus
from lm_helpers import make_text

from generate.train import main as lm_main
from seq2seq.core.batching import UpdateBatches, own_shard, shard_batches
from seq2seq.core.checkpoint import load_checkpoint
from seq2seq.core.distributed import launched_by_torchrun, seed_process, start_world
from seq2seq.core.trainer import Trainer
from seq2seq.train import main as train_main

LAUNCH_SECONDS = 150  # one torchrun launch of a tiny model takes 10-20 s on 2 busy cores
ENVIRONMENT = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]

# 5 batches an epoch: with 2 processes, the second reads a dummy at the end of every epoch
UNEVEN = dict(batch_tokens=100)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def text(tmp_path_factory):
    path = tmp_path_factory.mktemp("text") / "text.txt"
    path.write_text(make_text(25), encoding="utf-8")  # 10 windows an epoch in 2 x 2 rows
    return str(path)


def torchrun(*arguments: str, processes: int = 2) -> subprocess.CompletedProcess:
    command = [*TORCHRUN, "--standalone", f"--nproc_per_node={processes}", *arguments]
    return subprocess.run(
        command,
        cwd=ROOT,
        env=ENVIRONMENT,
        capture_output=True,
        text=True,
        timeout=LAUNCH_SECONDS,
    )


def succeeded(done: subprocess.CompletedProcess) -> bool:
    if done.returncode != 0:
        print(done.stdout[-3000:], done.stderr[-5000:])
    return done.returncode == 0


def lm_argv(text: str, out, **settings) -> list[str]:
    values = dict(
        text=text,
        embedding_size=8,
        hidden_size=16,
        layers=2,
        dropout=0.0,
        bptt=16,
        batch_size=2,
        state_reset=0.3,
        log_every=1,
        eval_every=4,
        progress=False,
        amp="off",  # float32: B and 2B rows take other bf16 kernels
        out=str(out),
    )
    values.update(settings)
    return [f"--{k.replace('_', '-')}={v}" for k, v in values.items()] + ["--no-export"]


def comparable(rows: list[dict]) -> list[dict]:
    timing = ("elapsed", "tokens_per_s", "eval_seconds")
    return [{k: v for k, v in row.items() if k not in timing} for row in rows]


def assert_same_weights(a_path, b_path, exact: bool = False) -> None:
    a, b = load_checkpoint(str(a_path))["model"], load_checkpoint(str(b_path))["model"]
    for name, tensor in a.items():
        if exact:
            assert torch.equal(tensor, b[name]), name
        else:
            torch.testing.assert_close(tensor, b[name], rtol=1e-4, atol=1e-5, msg=name)


def leftovers(run) -> list[str]:
    return [name for name in os.listdir(run) if ".tmp" in name]


# ----------------------------------------------------------------------------- sharding


@pytest.mark.parametrize("processes", [1, 2, 3])
@pytest.mark.parametrize("count", [1, 2, 5, 6, 7])
def test_shards_are_disjoint_complete_and_equal(processes, count):
    batches = [f"b{i}" for i in range(count)]
    shards = [shard_batches(batches, rank, processes) for rank in range(processes)]
    assert len({len(s.batches) for s in shards}) == 1  # every process runs as many passes
    read = [b for s in shards for b, real in zip(s.batches, s.real) if real]
    assert sorted(read) == sorted(batches)  # complete and disjoint
    dummies = sum(not real for s in shards for real in s.real)
    assert dummies == len(shards[0].batches) * processes - count
    for s in shards:  # dummies only pad the end, and are real batches of the epoch
        assert s.real == sorted(s.real, reverse=True)
        assert all(b in batches for b in s.batches)


def test_a_resumed_shard_continues_the_uninterrupted_one():
    batches = list(range(11))
    for processes in (1, 2, 3):
        for accumulate in (1, 2):
            for rank in range(processes):
                whole = shard_batches(batches, rank, processes)
                updates = list(whole.updates(accumulate))
                assert updates[-1].end == len(batches)
                for done, update in enumerate(updates[:-1]):
                    resumed = shard_batches(batches, rank, processes, start=update.end)
                    rest = whole.batches[(done + 1) * accumulate :]
                    assert resumed.batches == rest
                    assert [u.end for u in resumed.updates(accumulate)] == [
                        u.end for u in updates[done + 1 :]
                    ]
    assert own_shard(batches, 4).batches == batches[4:]
    assert [u.end for u in own_shard(batches, 4).updates(3)] == [7, 10, 11]


def test_a_dummy_batch_adds_zero_gradient_and_no_statistic(tmp_path):
    from conftest import random_model

    from seq2seq.task import TranslationTask

    source, target = word_tokenizers()
    config = tiny_config(batch_tokens=10, progress=False, max_steps=1)
    model = random_model(config, source, target, scale=0.1).train()
    pairs = ["el gato come", "la casa grande", "un perro azul corre", "el perro bebe"]
    english = ["the cat eats", "the big house", "a blue dog runs", "the dog drinks"]
    task = TranslationTask(config, model, source, target, pairs, english, pairs, english, log=print)
    trainer = Trainer(task, config, str(tmp_path), log=lambda message: None)
    first, second = task.epoch_batches(1)[:2]
    sums = trainer.updater.backward(UpdateBatches([first], [False], 1), trainer._autocast)
    assert sums["targets"] == sums["loss_sum"] == 0
    assert all(p.grad is None or not p.grad.any() for p in model.parameters())
    alone = trainer.updater.backward(UpdateBatches([second], [True], 1), trainer._autocast)
    expected = [p.grad.clone() for p in model.parameters()]
    both = trainer.updater.backward(
        UpdateBatches([first, second], [False, True], 2), trainer._autocast
    )
    assert both == alone
    for gradient, parameter in zip(expected, model.parameters()):
        torch.testing.assert_close(parameter.grad, gradient)


# ----------------------------------------------------------------------------- one process


def test_without_torchrun_the_world_is_one_process(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    assert not launched_by_torchrun()
    world = start_world("cpu")
    assert (world.rank, world.size, world.distributed, world.is_main) == (0, 1, False, True)
    assert world.sum([1, 2.5]) == [1.0, 2.5]
    assert world.broadcast({"bleu": 3.0}) == {"bleu": 3.0}
    assert world.gather("state") == ["state"]
    assert world.extremes(4.0) == (4.0, 4.0)
    assert world.in_turn(lambda: 7) == 7
    world.close()
    assert launched_by_torchrun(
        {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "2"}
        | {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}
    )


def test_each_process_draws_its_own_noise_by_a_fixed_rule():
    draws = {}
    for rank in (0, 1, 0):
        seed_process(1, rank, step=0)
        draws.setdefault(rank, []).append(torch.rand(3))
    assert torch.equal(draws[0][0], draws[0][1])
    assert not torch.equal(draws[0][0], draws[1][0])


def test_accumulate_is_range_checked(corpus, tmp_path, capsys):
    assert train_main(train_argv(corpus, tmp_path / "run", accumulate=0)) == 2
    assert "accumulate must be in [1, 4096], got 0" in capsys.readouterr().err


# ----------------------------------------------------------------------------- two processes


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_two_processes_take_the_updates_of_one_process_accumulating_two(corpus, tmp_path):
    settings = dict(UNEVEN, max_steps=8, eval_every=4)
    two, one = tmp_path / "two", tmp_path / "one"
    worker = str(ROOT / "tests" / "ddp_worker.py")
    quiet = ["--no-export"]
    assert succeeded(torchrun(worker, str(tmp_path), *train_argv(corpus, two, **settings), *quiet))
    assert train_main(train_argv(corpus, one, accumulate=2, **settings) + quiet) == 0

    rows_two, rows_one = read_metrics(two), read_metrics(one)
    assert [row["step"] for row in rows_two] == list(range(1, 9))
    assert [row["epoch"] for row in rows_two] == [1, 1, 1, 2, 2, 2, 3, 3]  # 3 updates an epoch
    for a, b in zip(rows_two, rows_one, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
        assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-4)
    norms = [json.loads((tmp_path / f"grad_norms.{rank}.json").read_text()) for rank in (0, 1)]
    assert norms[0] == norms[1] and len(norms[0]) == 8  # equal on both processes, to the bit
    for a, b in zip(read_metrics(two, "valid"), read_metrics(one, "valid"), strict=True):
        assert a["nll"] == pytest.approx(b["nll"], rel=1e-5)
    assert_same_weights(two / "last.pt", one / "last.pt")
    assert load_checkpoint(str(two / "last.pt"))["progress"]["world_size"] == 2


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_language_model_two_processes_of_b_rows_read_one_process_of_2b(text, tmp_path):
    two, one = tmp_path / "two", tmp_path / "one"
    assert succeeded(torchrun("-m", "generate.train", *lm_argv(text, two, max_steps=6)))
    assert lm_main(lm_argv(text, one, max_steps=6, batch_size=4)) == 0
    for a, b in zip(read_metrics(two), read_metrics(one), strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
    assert_same_weights(two / "last.pt", one / "last.pt")


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_stopped_and_resumed_under_two_processes_equals_a_straight_run(text, tmp_path, capsys):
    """A language model with dropout: each process's random state and carried rows resume."""
    noisy = dict(dropout=0.2, embedding_dropout=0.1)
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert succeeded(
        torchrun("-m", "generate.train", *lm_argv(text, straight, max_steps=16, **noisy))
    )
    assert succeeded(torchrun("-m", "generate.train", *lm_argv(text, split, max_steps=8, **noisy)))
    other = tmp_path / "one-process"
    shutil.copytree(split, other)
    resume = [*lm_argv(text, split, max_steps=16, **noisy), "--resume"]
    assert succeeded(torchrun("-m", "generate.train", *resume))

    assert max(row["epoch"] for row in read_metrics(straight)) == 2  # crossed an epoch
    assert comparable(read_metrics(split)) == comparable(read_metrics(straight))
    assert comparable(read_metrics(split, "valid")) == comparable(read_metrics(straight, "valid"))
    assert_same_weights(split / "last.pt", straight / "last.pt", exact=True)
    assert len(load_checkpoint(str(split / "last.pt"))["ranks"]) == 2

    # one process continues the two processes' run from the same place in the data
    assert lm_main([*lm_argv(text, other, max_steps=10, batch_size=4, **noisy), "--resume"]) == 0
    assert "was written by 2 processes and this run has 1" in capsys.readouterr().out
    rows = read_metrics(other)
    assert [row["step"] for row in rows] == list(range(1, 11))
    assert [row["epoch"] for row in rows] == [row["epoch"] for row in read_metrics(straight)][:10]
    assert load_checkpoint(str(other / "last.pt"))["progress"]["world_size"] == 1


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_early_stopping_ends_every_process_with_one_checkpoint(corpus, tmp_path):
    run = tmp_path / "run"
    # an unlearning rate: validation BLEU never improves, so patience 2 stops at update 6,
    # the end of epoch 2 (5 batches, 3 updates an epoch)
    settings = dict(UNEVEN, learning_rate=1e-9, min_learning_rate=0, eval_every=2, patience=2)
    done = torchrun("-m", "seq2seq.train", *train_argv(corpus, run, **settings, max_steps=100))
    assert succeeded(done)
    assert "stopped: early stopping: no better validation bleu in 2 evaluations" in done.stdout
    assert [row["step"] for row in read_metrics(run)] == list(range(1, 7))
    assert [row["step"] for row in read_metrics(run, "valid")] == [2, 4, 6]
    assert sorted(p.name for p in run.glob("*.pt")) == ["best.pt", "last.pt"]
    assert load_checkpoint(str(run / "last.pt"))["progress"]["step"] == 6
    assert leftovers(run) == []
    assert (run / "bundle" / "model.json").is_file()  # rank 0 exported


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_max_minutes_ends_every_process(corpus, tmp_path):
    run = tmp_path / "run"
    settings = dict(UNEVEN, max_steps=0, max_minutes=0.02, eval_every=100000)
    done = torchrun("-m", "seq2seq.train", *train_argv(corpus, run, **settings), "--no-export")
    assert succeeded(done)
    assert "stopped: reached max_minutes=0.02" in done.stdout
    steps = [row["step"] for row in read_metrics(run)]
    assert steps == list(range(1, len(steps) + 1))
    assert load_checkpoint(str(run / "last.pt"))["progress"]["step"] == steps[-1]
    assert [row["step"] for row in read_metrics(run, "valid")] == [steps[-1]]
    assert leftovers(run) == []


def worker_ranks(launcher: int) -> dict[int, int]:
    """rank -> process id of the workers a torchrun process started (from /proc)."""
    ranks = {}
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/environ", "rb") as f:
                environment = dict(
                    item.split(b"=", 1) for item in f.read().split(b"\0") if b"=" in item
                )
        except (OSError, IndexError, ValueError):
            continue
        if parent == launcher and b"RANK" in environment:
            ranks[int(environment[b"RANK"])] = int(entry)
    return ranks


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.skipif(not os.path.isdir("/proc"), reason="finds the worker processes in /proc")
def test_a_signal_to_one_process_stops_every_process_after_a_save(text, tmp_path):
    run = tmp_path / "run"
    argv = lm_argv(text, run, max_steps=100000, eval_every=100000)
    command = [*TORCHRUN, "--standalone", "--nproc_per_node=2", "-m", "generate.train", *argv]
    launch = subprocess.Popen(
        command, cwd=ROOT, env=ENVIRONMENT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    metrics = run / "metrics.jsonl"
    deadline = time.monotonic() + LAUNCH_SECONDS
    try:
        while time.monotonic() < deadline:
            if metrics.exists() and len(metrics.read_text().splitlines()) > 20:
                break
            time.sleep(0.05)
        workers = worker_ranks(launch.pid)
        assert sorted(workers) == [0, 1]
        os.kill(workers[1], signal.SIGTERM)  # rank 1 only: rank 0 must stop with it
        output = launch.communicate(timeout=LAUNCH_SECONDS)[0].decode()
    finally:
        if launch.poll() is None:
            launch.kill()
    assert launch.returncode == 0  # SIGTERM: a clean, resumable stop on every process
    assert "stopped: interrupted (a signal to another process)" in output
    assert f"saved {run / 'last.pt'}; continue" in output
    steps = [row["step"] for row in read_metrics(run)]
    assert load_checkpoint(str(run / "last.pt"))["progress"]["step"] == steps[-1]
    assert read_metrics(run, "valid") == []  # no evaluation on the way out
    assert leftovers(run) == []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_two_torchrun_launches_meet_as_two_machines(text, tmp_path):
    run = tmp_path / "run"
    rendezvous = [
        "--nnodes=2",
        "--nproc_per_node=1",
        "--rdzv-backend=c10d",
        f"--rdzv-endpoint=127.0.0.1:{free_port()}",
        "--rdzv-id=two-machines",
    ]
    command = [*TORCHRUN, *rendezvous, "-m", "generate.train", *lm_argv(text, run, max_steps=3)]
    machines = [
        subprocess.Popen(
            command, cwd=ROOT, env=ENVIRONMENT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        for _ in range(2)
    ]
    try:
        outputs = [m.communicate(timeout=LAUNCH_SECONDS)[0].decode() for m in machines]
    finally:
        for m in machines:
            if m.poll() is None:
                m.kill()
    assert [m.returncode for m in machines] == [0, 0], outputs
    assert sum("data parallel: world size 2 (gloo)" in output for output in outputs) == 1
    assert [row["step"] for row in read_metrics(run)] == [1, 2, 3]
    assert load_checkpoint(str(run / "last.pt"))["progress"]["world_size"] == 2
