"""The training loop shared by every model family.

A *task* (:class:`seq2seq.core.task.Task`) knows its data, its model and how to evaluate;
:class:`Trainer` owns the rest: device, precision, optimizer, schedule, micro-batches
(``accumulate``), budgets, evaluation, early stopping, ``metrics.jsonl``, the curve plot, atomic
checkpoints (``last.pt``, ``best.pt``), exact resume, signals, and stopping on a NaN loss.

Resume is exact: a checkpoint holds the model, optimizer, schedule, grad scaler, step, the
position in the epoch's batch list (batches are a pure function of seed and epoch), every RNG
state, and the task's own state (e.g. a language model's carried hidden state).

Under torchrun (:mod:`seq2seq.core.distributed`) every process runs this loop on its share of
each epoch (:func:`seq2seq.core.batching.shard_batches`, or the task's own ``rank_batches``) and
the processes take every decision together: rank 0 alone validates and writes the run
directory, and its results, its clock and any process's signal reach every process, so that all
stop at the same update. ``last.pt`` then holds every process's RNG and task state; resuming on
as many processes is exact, on another number it continues from the same place in the data.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time

import torch

from seq2seq.core.batching import Shard, UpdateBatches, own_shard, shard_batches
from seq2seq.core.checkpoint import (
    capture_rng_state,
    checkpoint_payload,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from seq2seq.core.config import save_config
from seq2seq.core.distributed import World, seed_process
from seq2seq.core.hardware import describe_amp, resolve_amp
from seq2seq.core.metrics import MetricsLog, TrainWindow
from seq2seq.core.optim import LearningRateSchedule, build_optimizer
from seq2seq.core.plotting import plot_curves
from seq2seq.core.signals import StopSignals
from seq2seq.core.task import Task
from seq2seq.core.update import STAT_KEYS, Updater


def _write_line(message: str) -> None:
    """Print without breaking the progress bar."""
    from tqdm import tqdm

    tqdm.write(message, file=sys.stdout)
    sys.stdout.flush()


def _quiet(message: str) -> None:
    """The log of processes other than rank 0."""


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is left as it was."""


class Trainer:
    """Trains a :class:`Task` under a config (:class:`seq2seq.core.config.TrainingConfig`),
    writing the run directory: ``config.yaml``, ``metrics.jsonl``, ``curves.png``, ``last.pt``
    and ``best.pt``. ``trust_checkpoint`` lets :meth:`resume` read a ``last.pt`` written before
    checkpoint format 2 (see :func:`seq2seq.core.checkpoint.load_checkpoint`). ``world`` is the
    process's place in a torchrun run (:func:`seq2seq.core.distributed.start_world`); the
    default is one process."""

    def __init__(
        self,
        task: Task,
        config,
        run_dir: str,
        log=None,
        trust_checkpoint=False,
        world: World | None = None,
    ):
        self.task = task
        self.config = config
        self.run_dir = run_dir
        self.world = world or World()
        self.log = (log or _write_line) if self.world.is_main else _quiet
        self.trust_checkpoint = trust_checkpoint
        self.device = next(task.model.parameters()).device
        self.amp_dtype = resolve_amp(config.amp, self.device)
        self.log(describe_amp(config.amp, self.amp_dtype, self.device))
        self.optimizer = build_optimizer(config, task.model.parameters())
        self.schedule = LearningRateSchedule(self.optimizer, config)
        use_scaler = self.amp_dtype == torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=use_scaler)
        self.updater = Updater(task, self.optimizer, self.scaler, self.world, config.clip_grad_norm)
        self.step = 0
        self.epoch = 1
        self.batch_index = 0  # data position in the current epoch (see batching.Shard)
        self.epoch_length = 0  # data positions in the current epoch
        self.elapsed = 0.0  # training seconds over all sessions of this run (rank 0's clock)
        self.best_value: float | None = None
        self.best_step = 0
        self.bad_evaluations = 0
        self.stop_reason = ""
        self.stop_signals = StopSignals(self.log)  # the signals this process receives
        self.interrupted, self.stopped_by = False, ""  # a process got one: every process stops
        self.metrics_path = os.path.join(run_dir, "metrics.jsonl")
        self.metrics = MetricsLog(self.metrics_path)
        self.last_path = os.path.join(run_dir, "last.pt")
        self.best_path = os.path.join(run_dir, "best.pt")
        self._session_start = time.monotonic()
        self._session_elapsed_start = 0.0
        self._resume_rng = None
        self._resume_task_state = None
        self._saved_epoch_length = 0  # set when resuming on another number of processes

    # ----------------------------------------------------------------- checkpoints

    def _payload(self, rank_states: list[dict] | None) -> dict:
        training_state = None
        if rank_states is not None:  # last.pt: everything a resume needs
            training_state = {
                "optimizer": self.optimizer.state_dict(),
                "schedule": self.schedule.state_dict(),
                "scaler": self.scaler.state_dict(),
                **rank_states[0],  # rng and task: rank 0's, or the one process's
            }
            if len(rank_states) > 1:
                training_state["ranks"] = rank_states
        return checkpoint_payload(
            self.task.kind,
            self.config,
            self.task.model.state_dict(),
            self.task.checkpoint_extras(),
            progress={
                "step": self.step,
                "epoch": self.epoch,
                "batch_index": self.batch_index,
                "epoch_length": self.epoch_length,
                "world_size": self.world.size,
                "elapsed": self.elapsed,
                "best_value": self.best_value,
                "best_step": self.best_step,
                "bad_evaluations": self.bad_evaluations,
            },
            training_state=training_state,
        )

    def save(self, best: bool = False) -> None:
        """Write ``last.pt`` (and ``best.pt``) from rank 0, with every process's RNG and task
        state. Every process calls it."""
        states = self.world.gather({"rng": capture_rng_state(), "task": self.task.state_dict()})
        if not self.world.is_main:
            return
        save_checkpoint(self._payload(states), self.last_path)
        if best:
            save_checkpoint(self._payload(None), self.best_path)

    def resume(self) -> None:
        """Continue from ``last.pt`` exactly where it stopped (every process reads it)."""
        payload = load_checkpoint(
            self.last_path,
            map_location=self.device,
            trust=self.trust_checkpoint,
            expected_kind=self.task.kind,
        )
        try:
            self.task.model.load_state_dict(payload["model"])
        except RuntimeError as error:
            raise ValueError(
                f"{self.last_path}: the checkpoint does not fit the configured model; "
                f"resume with the run's own config ({error})"
            ) from None
        self.optimizer.load_state_dict(payload["optimizer"])
        self.schedule.load_state_dict(payload["schedule"])
        self.scaler.load_state_dict(payload["scaler"])
        progress = payload["progress"]
        self.step = progress["step"]
        self.epoch = progress["epoch"]
        self.batch_index = progress["batch_index"]
        self.elapsed = progress["elapsed"]
        self.best_value = progress["best_value"]
        self.best_step = progress["best_step"]
        self.bad_evaluations = progress["bad_evaluations"]
        saved_world = progress.get("world_size", 1)
        if saved_world == self.world.size:
            mine = payload["ranks"][self.world.rank] if "ranks" in payload else payload
            self._resume_rng = mine["rng"]
            self._resume_task_state = mine["task"]
        else:
            seed_process(self.config.seed, self.world.rank, self.step)
            self._saved_epoch_length = progress.get("epoch_length", 0)
            self.log(
                f"note: {self.last_path} was written by {saved_world} processes and this run "
                f"has {self.world.size}: it continues from the same place in the data, with "
                "new random streams (and any carried state restarted), so not bit for bit as "
                f"{saved_world} processes would have continued"
            )
        dropped = self.metrics.purge_after(self.step) if self.world.is_main else 0
        lost = f"; dropped {dropped} metrics lines written after it" if dropped else ""
        self.log(
            f"resuming {self.run_dir} at update {self.step} (epoch {self.epoch}, "
            f"batch {self.batch_index}){lost}"
        )

    # ----------------------------------------------------------------- agreement

    def _agree(self, values=()) -> list[float]:
        """``values`` summed over the processes; with them every process learns rank 0's
        clock (``elapsed``) and whether any process received a stop signal
        (``interrupted``), so that all take the same decisions at the same update."""
        clock = 0.0
        if self.world.is_main:
            clock = self._session_elapsed_start + (time.monotonic() - self._session_start)
        got = self.stop_signals.received
        *sums, elapsed, ctrl_c, term = self.world.sum([*values, clock, got == "Ctrl-C", bool(got)])
        self.elapsed = elapsed
        self.interrupted = term > 0  # any signal; a Ctrl-C anywhere makes the exit status 130
        self.stopped_by = "Ctrl-C" if ctrl_c > 0 else ("SIGTERM" if term > 0 else "")
        return sums

    def _epoch_shard(self) -> Shard:
        """This process's share of the current epoch, from the data position on."""
        rank, processes = self.world.rank, self.world.size
        own = getattr(self.task, "rank_batches", None)
        if own is not None:
            batches = own(self.epoch, rank, processes)
            low, high = self.world.extremes(len(batches))
            if low != high:
                raise ValueError(
                    f"rank_batches gave the processes {low:.0f} to {high:.0f} batches; every "
                    "process must read as many"
                )
        else:
            batches = self.task.epoch_batches(self.epoch)
        if self._saved_epoch_length and own is not None:  # per-process lists changed length
            self.batch_index = round(self.batch_index * len(batches) / self._saved_epoch_length)
        self._saved_epoch_length = 0
        self.epoch_length = len(batches)
        if own is not None:
            return own_shard(batches, self.batch_index)
        return shard_batches(batches, rank, processes, self.batch_index)

    # ----------------------------------------------------------------- bookkeeping

    def _budget_exhausted(self) -> str:
        c = self.config
        if c.max_steps and self.step >= c.max_steps:
            return f"reached max_steps={c.max_steps}"
        if c.max_epochs and self.epoch > c.max_epochs:
            return f"reached max_epochs={c.max_epochs}"
        if c.max_minutes and self.elapsed >= c.max_minutes * 60:
            return f"reached max_minutes={c.max_minutes:g}"
        if self.interrupted:
            return f"interrupted ({self.stop_signals.received or 'a signal to another process'})"
        return ""

    def _is_better(self, value: float) -> bool:
        if self.best_value is None:
            return True
        if self.task.higher_is_better:
            return value > self.best_value
        return value < self.best_value

    def evaluate(self) -> dict:
        """Rank 0 validates; every process takes the decisions its results lead to."""
        started = time.monotonic()
        results = None
        if self.world.is_main:
            self.task.model.eval()
            with torch.no_grad(), self._autocast():
                results = self.task.evaluate()
            self.task.model.train()
        results = self.world.broadcast(results)
        value = results[self.task.selection_metric]
        improved = self._is_better(value)
        if improved:
            self.best_value, self.best_step, self.bad_evaluations = value, self.step, 0
        else:
            self.bad_evaluations += 1
        decayed = self.schedule.report(improved)
        row = {
            "split": "valid",
            "step": self.step,
            "epoch": self.epoch,
            "elapsed": round(self.elapsed, 1),
            **results,
            "eval_seconds": round(time.monotonic() - started, 2),
        }
        if self.world.is_main:
            self.metrics.write(row)
        shown = ", ".join(
            f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in results.items()
        )
        note = " (best)" if improved else ""
        if decayed:
            note += f"; learning rate now {self.schedule.rate(self.step + 1, self.elapsed):.3g}"
        self.log(f"[update {self.step}] valid: {shown}{note}")
        self.save(best=improved)
        if self.world.is_main:
            try:
                plot_curves(
                    self.metrics_path,
                    os.path.join(self.run_dir, "curves.png"),
                    self.task.selection_metric,
                )
            except Exception as error:  # a plot must never stop training
                self.log(f"(could not draw curves.png: {error})")
        self._agree()  # the validation time counts against max_minutes
        return row

    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    # ----------------------------------------------------------------- the loop

    def train(self, resume: bool = False) -> dict:
        if self.world.is_main:
            os.makedirs(self.run_dir, exist_ok=True)
            save_config(self.config, os.path.join(self.run_dir, "config.yaml"))
        if resume:
            self.resume()
        model, config = self.task.model, self.config
        model.train()
        self.stop_signals.install()
        progress = self._progress_bar()
        self._session_start = time.monotonic()
        self._session_elapsed_start = self.elapsed
        window = TrainWindow()
        last_eval_step = self.step if resume else -1
        try:
            while not self.stop_reason:
                shard = self._epoch_shard()
                if self.batch_index == 0 or self._resume_task_state is None:
                    self.task.start_epoch(self.epoch)
                if self._resume_task_state is not None:
                    self.task.load_state_dict(self._resume_task_state)
                    self._resume_task_state = None
                if self._resume_rng is not None:
                    restore_rng_state(self._resume_rng)
                    self._resume_rng = None
                for update in shard.updates(config.accumulate):
                    self.stop_reason = self._budget_exhausted()
                    if self.stop_reason:
                        break
                    step_start = time.monotonic()
                    stats = self._train_step(update)
                    self.batch_index = update.end
                    self.step += 1
                    window.add(stats, time.monotonic() - step_start)
                    if self.step % config.log_every == 0:
                        self._log_train(window, progress)
                    if progress is not None:
                        progress.update(1)
                    if self.step % config.eval_every == 0:
                        self.evaluate()
                        last_eval_step = self.step
                        if config.patience and self.bad_evaluations >= config.patience:
                            self.stop_reason = (
                                f"early stopping: no better validation "
                                f"{self.task.selection_metric} in "
                                f"{config.patience} evaluations"
                            )
                            break
                else:
                    self.epoch += 1
                    self.batch_index = 0
                    continue
            if last_eval_step != self.step and self.step > 0 and not self.interrupted:
                self.evaluate()
            elif self.step > 0:
                self.save()
        finally:
            if progress is not None:
                progress.close()
            self.stop_signals.restore()
        best = "none" if self.best_value is None else f"{self.best_value:.4g}"
        self.log(
            f"stopped: {self.stop_reason} after {self.step} updates, "
            f"{self.elapsed / 60:.1f} min; best validation {self.task.selection_metric} "
            f"{best} at update {self.best_step}"
        )
        return {
            "step": self.step,
            "stop_reason": self.stop_reason,
            "best_value": self.best_value,
            "best_step": self.best_step,
            "elapsed": self.elapsed,
        }

    def _train_step(self, batch) -> dict:
        """One update over ``batch``: this process's :class:`UpdateBatches`, or one batch of
        the task. Returns the update's statistics summed over the processes."""
        update = batch if isinstance(batch, UpdateBatches) else UpdateBatches([batch], [True], 0)
        rate = self.schedule.step(self.step + 1, self.elapsed)
        local = self.updater.backward(update, self._autocast)
        *sums, nonfinite, bad_loss = self._agree(
            [*(local[key] for key in STAT_KEYS), local["nonfinite"], local["bad_loss"]]
        )
        if nonfinite:
            raise TrainingDiverged(
                f"the training loss became {bad_loss} at update {self.step + 1}; stopped "
                f"without saving, so {self.last_path} still holds the last good state. Lower "
                "learning_rate, raise warmup_steps, or set clip_grad_norm, then --resume."
            )
        stats = dict(zip(STAT_KEYS, sums))
        stats["targets"] = round(stats["targets"])
        stats["throughput_tokens"] = round(stats["throughput_tokens"])
        stats["grad_norm"] = self.updater.step(stats["targets"])
        stats["lr"] = rate
        return stats

    def _log_train(self, window: TrainWindow, progress) -> None:
        row = {
            "split": "train",
            "step": self.step,
            "epoch": self.epoch,
            **window.figures(),
            "lr": self.optimizer.param_groups[0]["lr"],
            "elapsed": round(self.elapsed, 1),
        }
        if self.scaler.is_enabled():  # fp16: the loss scale (a drop: an overflow, step skipped)
            row["loss_scale"] = self.scaler.get_scale()
        window.clear()
        if self.world.is_main:
            self.metrics.write(row)
        if progress is not None:
            progress.set_postfix(
                loss=f"{row['loss']:.3f}",
                tok_s=row["tokens_per_s"],
                lr=f"{row['lr']:.2g}",
                epoch=self.epoch,
                refresh=False,
            )

    def _progress_bar(self):
        if not self.config.progress or not self.world.is_main:
            return None
        from tqdm import tqdm

        total = self.config.max_steps or None
        return tqdm(
            total=total,
            initial=self.step,
            unit="upd",
            dynamic_ncols=True,
            file=sys.stderr,
            mininterval=1.0,
        )
