"""The training loop shared by every model family.

A *task* (``seq2seq.task.TranslationTask``, ``generate.task.LanguageModelTask``, ...)
knows its data, its model and how to evaluate; :class:`Trainer` owns everything else: device and
mixed precision, optimizer and schedule, budgets (steps, epochs, minutes), evaluation and early
stopping, ``metrics.jsonl`` and the curve plot, atomic checkpoints (``last.pt``, ``best.pt``),
exact resume, Ctrl-C, and stopping on a non-finite loss.

Resume is exact: a checkpoint holds the model, optimizer, schedule, grad scaler, step, the
position in the epoch's batch list (batches are a pure function of seed and epoch), every RNG
state, and the task's own state (e.g. a language model's carried hidden state).
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import sys
import time
from typing import Protocol

import torch

from seq2seq.core.checkpoint import (
    capture_rng_state,
    checkpoint_payload,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from seq2seq.core.config import save_config
from seq2seq.core.hardware import resolve_amp
from seq2seq.core.metrics import MetricsLog
from seq2seq.core.optim import LearningRateSchedule, build_optimizer
from seq2seq.core.plotting import plot_curves


def _write_line(message: str) -> None:
    """Print without breaking the progress bar."""
    from tqdm import tqdm

    tqdm.write(message, file=sys.stdout)
    sys.stdout.flush()


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is left as it was."""


class Task(Protocol):
    """What a model family gives the :class:`Trainer`."""

    kind: str  # the checkpoint and bundle kind: "translation", "language_model", ...
    model: torch.nn.Module
    selection_metric: str  # the validation metric that picks best.pt and drives early stopping
    higher_is_better: bool

    def epoch_batches(self, epoch: int) -> list:
        """The batches of ``epoch``: a pure function of the seed and the epoch, so a resumed
        run rebuilds the same list and continues from its position."""
        ...

    def start_epoch(self, epoch: int) -> None: ...

    def train_step(self, batch) -> tuple[torch.Tensor, dict]:
        """Forward pass over one batch. Returns the loss *summed* over the batch's predictions
        (the trainer divides by their count, over every micro-batch and process of an update)
        and stats: ``loss_sum`` and ``nll_sum`` (floats), ``targets`` (how many predictions
        the sums cover: target tokens, texts, forecast steps) and ``throughput_tokens`` (units
        read, for the tokens/s figure)."""
        ...

    def evaluate(self) -> dict:
        """Scores on the validation data, ``selection_metric`` among them."""
        ...

    def checkpoint_extras(self) -> dict:
        """Plain data the family needs to rebuild the model for inference (tokenizers, ...)."""
        ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


class Trainer:
    """Trains a :class:`Task` under a config (:class:`seq2seq.core.config.TrainingConfig`),
    writing the run directory: ``config.yaml``, ``metrics.jsonl``, ``curves.png``, ``last.pt``
    and ``best.pt``. ``trust_checkpoint`` lets :meth:`resume` read a ``last.pt`` written before
    checkpoint format 2 (see :func:`seq2seq.core.checkpoint.load_checkpoint`)."""

    def __init__(self, task: Task, config, run_dir: str, log=None, trust_checkpoint=False):
        self.task = task
        self.config = config
        self.run_dir = run_dir
        self.log = log or _write_line
        self.trust_checkpoint = trust_checkpoint
        self.device = next(task.model.parameters()).device
        self.amp_dtype = resolve_amp(config.amp, self.device)
        self.optimizer = build_optimizer(config, task.model.parameters())
        self.schedule = LearningRateSchedule(self.optimizer, config)
        use_scaler = self.amp_dtype == torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=use_scaler)
        self.step = 0
        self.epoch = 1
        self.batch_index = 0  # next batch of the current epoch
        self.elapsed = 0.0  # training seconds over all sessions of this run
        self.best_value: float | None = None
        self.best_step = 0
        self.bad_evaluations = 0
        self.stop_reason = ""
        self.interrupted = False
        self.metrics_path = os.path.join(run_dir, "metrics.jsonl")
        self.metrics = MetricsLog(self.metrics_path)
        self.last_path = os.path.join(run_dir, "last.pt")
        self.best_path = os.path.join(run_dir, "best.pt")

    # ----------------------------------------------------------------- checkpoints

    def _payload(self, full: bool) -> dict:
        training_state = None
        if full:
            training_state = {
                "optimizer": self.optimizer.state_dict(),
                "schedule": self.schedule.state_dict(),
                "scaler": self.scaler.state_dict(),
                "rng": capture_rng_state(),
                "task": self.task.state_dict(),
            }
        return checkpoint_payload(
            self.task.kind,
            self.config,
            self.task.model.state_dict(),
            self.task.checkpoint_extras(),
            progress={
                "step": self.step,
                "epoch": self.epoch,
                "batch_index": self.batch_index,
                "elapsed": self.elapsed,
                "best_value": self.best_value,
                "best_step": self.best_step,
                "bad_evaluations": self.bad_evaluations,
            },
            training_state=training_state,
        )

    def save(self, best: bool = False) -> None:
        save_checkpoint(self._payload(full=True), self.last_path)
        if best:
            save_checkpoint(self._payload(full=False), self.best_path)

    def resume(self) -> None:
        """Continue from ``last.pt`` exactly where it stopped."""
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
        self._resume_rng = payload["rng"]
        self._resume_task_state = payload["task"]
        dropped = self.metrics.purge_after(self.step)
        lost = f"; dropped {dropped} metrics lines written after it" if dropped else ""
        self.log(
            f"resuming {self.run_dir} at update {self.step} (epoch {self.epoch}, "
            f"batch {self.batch_index}){lost}"
        )

    # ----------------------------------------------------------------- bookkeeping

    def _budget_exhausted(self, session_start: float, session_elapsed_start: float) -> str:
        c = self.config
        if c.max_steps and self.step >= c.max_steps:
            return f"reached max_steps={c.max_steps}"
        if c.max_epochs and self.epoch > c.max_epochs:
            return f"reached max_epochs={c.max_epochs}"
        spent = session_elapsed_start + (time.monotonic() - session_start)
        if c.max_minutes and spent >= c.max_minutes * 60:
            return f"reached max_minutes={c.max_minutes:g}"
        if self.interrupted:
            return "interrupted (Ctrl-C)"
        return ""

    def _is_better(self, value: float) -> bool:
        if self.best_value is None:
            return True
        if self.task.higher_is_better:
            return value > self.best_value
        return value < self.best_value

    def evaluate(self) -> dict:
        self.task.model.eval()
        started = time.monotonic()
        with torch.no_grad(), self._autocast():
            results = self.task.evaluate()
        self.task.model.train()
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
        self.metrics.write(row)
        shown = ", ".join(
            f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in results.items()
        )
        note = " (best)" if improved else ""
        if decayed:
            note += f"; learning rate now {self.schedule.rate(self.step + 1, self.elapsed):.3g}"
        self.log(f"[update {self.step}] valid: {shown}{note}")
        self.save(best=improved)
        try:
            plot_curves(
                self.metrics_path,
                os.path.join(self.run_dir, "curves.png"),
                self.task.selection_metric,
            )
        except Exception as error:  # a plot must never stop training
            self.log(f"(could not draw curves.png: {error})")
        return row

    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    # ----------------------------------------------------------------- the loop

    def train(self, resume: bool = False) -> dict:
        os.makedirs(self.run_dir, exist_ok=True)
        save_config(self.config, os.path.join(self.run_dir, "config.yaml"))
        self._resume_rng = None
        self._resume_task_state = None
        if resume:
            self.resume()
        model, config = self.task.model, self.config
        model.train()
        previous_handler = self._install_interrupt_handler()
        progress = self._progress_bar()
        session_start = time.monotonic()
        session_elapsed_start = self.elapsed
        window = {
            "loss_sum": 0.0,
            "nll_sum": 0.0,
            "targets": 0,
            "throughput_tokens": 0,
            "seconds": 0.0,
            "steps": 0,
        }
        last_eval_step = self.step if resume else -1
        try:
            while not self.stop_reason:
                batches = self.task.epoch_batches(self.epoch)
                if self.batch_index == 0 or self._resume_task_state is None:
                    self.task.start_epoch(self.epoch)
                if self._resume_task_state is not None:
                    self.task.load_state_dict(self._resume_task_state)
                    self._resume_task_state = None
                if self._resume_rng is not None:
                    restore_rng_state(self._resume_rng)
                    self._resume_rng = None
                while self.batch_index < len(batches):
                    self.stop_reason = self._budget_exhausted(session_start, session_elapsed_start)
                    if self.stop_reason:
                        break
                    step_start = time.monotonic()
                    stats = self._train_step(batches[self.batch_index])
                    self.batch_index += 1
                    self.step += 1
                    seconds = time.monotonic() - step_start
                    self.elapsed = session_elapsed_start + (time.monotonic() - session_start)
                    for key in ("loss_sum", "nll_sum", "targets", "throughput_tokens"):
                        window[key] += stats[key]
                    window["seconds"] += seconds
                    window["steps"] += 1
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
            signal.signal(signal.SIGINT, previous_handler)
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
        model, config = self.task.model, self.config
        with self._autocast():
            loss_sum, stats = self.task.train_step(batch)
        loss = loss_sum / max(1, stats["targets"])
        if not torch.isfinite(loss.detach()):
            raise TrainingDiverged(
                f"the training loss became {loss.item()} at update {self.step + 1}; stopped "
                f"without saving, so {self.last_path} still holds the last good state. Lower "
                "learning_rate, raise warmup_steps, or set clip_grad_norm, then --resume."
            )
        rate = self.schedule.step(self.step + 1, self.elapsed)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if config.clip_grad_norm > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        stats["lr"] = rate
        return stats

    def _log_train(self, window: dict, progress) -> None:
        targets = max(1, window["targets"])
        row = {
            "split": "train",
            "step": self.step,
            "epoch": self.epoch,
            "loss": window["loss_sum"] / targets,
            "nll": window["nll_sum"] / targets,
            "ppl": math.exp(min(50.0, window["nll_sum"] / targets)),
            "tokens_per_s": round(window["throughput_tokens"] / max(1e-9, window["seconds"])),
            "lr": self.optimizer.param_groups[0]["lr"],
            "elapsed": round(self.elapsed, 1),
        }
        self.metrics.write(row)
        if progress is not None:
            progress.set_postfix(
                loss=f"{row['loss']:.3f}",
                tok_s=row["tokens_per_s"],
                lr=f"{row['lr']:.2g}",
                epoch=self.epoch,
                refresh=False,
            )
        for key in window:
            window[key] = 0 if key != "seconds" else 0.0

    def _progress_bar(self):
        if not self.config.progress:
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

    def _install_interrupt_handler(self):
        def handler(signum, frame):
            if self.interrupted:  # a second Ctrl-C: stop right now
                raise KeyboardInterrupt
            self.interrupted = True
            self.log(
                "\nCtrl-C: finishing this update, saving last.pt, then stopping "
                "(press again to abort without saving)"
            )

        try:
            return signal.signal(signal.SIGINT, handler)
        except ValueError:  # not the main thread: leave signals alone
            return signal.getsignal(signal.SIGINT)
