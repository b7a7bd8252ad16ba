"""The command-line skeleton every command shares.

:func:`run_command` gives every command (train, translate, sample, evaluate, ...) the same
error contract: a problem the user can act on (a missing, unreadable or non-UTF-8 file, a bad
option, a bad bundle) is one line on stderr naming the file or the option, and exit status 2,
never a traceback; Ctrl-C is exit 130.

:class:`TrainCommand` is what each family's ``train`` command is built from: the common flags
(``--config``, ``--out``, ``--resume``, ``--no-export``, ``--trust-checkpoint``, every config
key), the no-argument demo, resuming from the run's own config, the config checks before any
work starts, seeding, the :class:`~seq2seq.core.trainer.Trainer` run and its exit codes (0 done
or stopped by SIGTERM, 1 diverged, 2 bad input, 130 Ctrl-C), then the family's report. Started
by torchrun, it joins the process group (:mod:`seq2seq.core.distributed`); rank 0 prints, writes
the run directory and reports, and every process exits with the same status.

Importing this module imports neither torch nor yaml (the runtime commands use it too).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

EXIT_OK, EXIT_DIVERGED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def error_line(error: BaseException) -> str:
    """One line for the user: an OSError names its file, anything else is its message."""
    if isinstance(error, OSError) and error.filename is not None:
        return f"{error.filename}: {error.strerror or error}"
    return str(error)


def run_command(body: Callable[[], int]) -> int:
    """Run a command's body and turn user errors into one line and exit status 2."""
    try:
        return body()
    except (ValueError, RuntimeError, OSError) as error:
        if isinstance(error, BrokenPipeError):
            return quiet_broken_pipe()
        print(f"error: {error_line(error)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def quiet_broken_pipe() -> int:
    """The reader of stdout went away (``| head``): not an error; keep Python's exit flush
    quiet too."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except OSError:
        pass
    return EXIT_OK


def add_runtime_arguments(parser: argparse.ArgumentParser) -> None:
    """``--device`` and ``--threads``: where a command runs a bundle (every command that runs
    one takes them, with the same meaning)."""
    parser.add_argument(
        "--device",
        default="cpu",
        choices=["cpu", "cuda"],
        help="where to run the bundle (cuda needs onnxruntime-gpu)",
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="CPU threads (default: onnxruntime's)"
    )


@contextlib.contextmanager
def open_input(path: str):
    """A binary stream of ``path`` (``-``: standard input, left open afterwards), or
    ValueError naming the file."""
    if path == "-":
        yield sys.stdin.buffer
        return
    if os.path.isdir(path):
        raise ValueError(f"{path}: is a directory, not a file")
    try:
        stream = open(path, "rb")
    except OSError as error:
        raise ValueError(f"{path}: cannot read ({error.strerror})") from None
    with stream:
        yield stream


@contextlib.contextmanager
def open_output(path: str):
    """A text stream writing ``path`` (``-``: standard output, left open afterwards), or
    ValueError naming it."""
    if path == "-":
        yield sys.stdout
        return
    try:
        stream = open(path, "w", encoding="utf-8")
    except OSError as error:
        raise ValueError(f"{path}: cannot write ({error.strerror})") from None
    with stream:
        yield stream


def read_stream_lines(stream, name: str, chunk_lines: int):
    """Lines of a binary stream decoded as UTF-8, ``chunk_lines`` at a time (so a file of any
    size streams through in constant memory); ValueError naming the line that is not UTF-8."""
    chunk: list[str] = []
    for number, raw in enumerate(stream, start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ValueError(
                f"{name}: line {number} is not valid UTF-8 ({error.reason} at byte {error.start})"
            ) from None
        if number == 1 and line.startswith("\ufeff"):
            line = line[1:]
        chunk.append(line.rstrip("\r\n"))
        if len(chunk) == chunk_lines:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# ----------------------------------------------------------------------------- training


@dataclass
class TrainCommand:
    """A family's ``train`` command. The family gives its names, its config class, its demo
    and two functions: ``make_task(config, run_dir, device, log)`` reads the data, builds the
    tokenizers and the model (on ``device``) and returns the task; ``report(config, run_dir,
    task, log)`` exports ``best.pt`` and prints the final scores, returning the exit status."""

    prog: str
    description: str
    config_class: type
    data_keys: tuple[str, ...]  # config keys that name data; none given and no --config: demo
    demo_out: str
    demo_settings: Callable[[], dict]  # config values of the demo (paths into the package)
    demo_message: str  # printed when the demo starts; may use {minutes} and {run_dir}
    make_task: Callable = field(repr=False)
    report: Callable = field(repr=False)

    # ----------------------------------------------------------------- arguments

    def parser(self) -> argparse.ArgumentParser:
        from seq2seq.core.config import add_config_arguments

        parser = argparse.ArgumentParser(
            prog=self.prog,
            description=self.description,
            formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        )
        parser.add_argument("--config", help="YAML config file (any config key below)")
        parser.add_argument("--out", help=f"run directory (default for the demo: {self.demo_out})")
        parser.add_argument(
            "--resume",
            action="store_true",
            help="continue the run in --out from its last.pt, exactly",
        )
        parser.add_argument(
            "--no-export",
            action="store_true",
            help="skip exporting RUN_DIR/bundle (and the final report) at the end",
        )
        parser.add_argument(
            "--trust-checkpoint",
            action="store_true",
            help="--resume: also read a last.pt written before checkpoint format 2, which "
            "holds pickled Python objects (only for files you trust)",
        )
        add_config_arguments(parser, self.config_class)
        return parser

    def parse_args(self, argv) -> argparse.Namespace:
        return self.parser().parse_args(argv)

    def build_config(self, args: argparse.Namespace):
        """The run's config (checked), its directory, and whether it is the demo."""
        from seq2seq.core.config import config_from_dict, load_yaml, resolve_config, update_config

        given_data = any(getattr(args, key, None) for key in self._data_flags())
        demo = not args.config and not given_data and not args.resume
        out = args.out or (self.demo_out if demo else None)
        if out is None:
            raise ValueError(
                "--out RUN_DIR is required (the run's checkpoints, metrics and bundle go there)"
            )
        if args.resume:
            saved = os.path.join(out, "config.yaml")
            if not os.path.exists(saved):
                raise ValueError(f"--resume: {saved} does not exist; is {out} a run directory?")
            base = config_from_dict(self.config_class, load_yaml(saved), saved)
        else:
            base = self.config_class()
            if demo:
                base = update_config(base, self.demo_settings(), "demo settings")
        config = resolve_config(self.config_class, args.config, args, base=base)
        config.check()
        return config, out, demo

    def _data_flags(self) -> list[str]:
        renamed = self.config_class.renamed_keys
        return [*self.data_keys, *(old for old, new in renamed.items() if new in self.data_keys)]

    # ----------------------------------------------------------------- running

    def main(self, argv=None) -> int:
        args = self.parse_args(sys.argv[1:] if argv is None else argv)
        return run_command(lambda: self.run(args))

    def run(self, args: argparse.Namespace) -> int:
        config, run_dir, demo = self.build_config(args)
        if not args.resume and os.path.exists(os.path.join(run_dir, "last.pt")):
            raise ValueError(
                f"{run_dir} already holds a run; pass --resume to continue it, or choose "
                "another --out"
            )
        from seq2seq.core.distributed import start_world

        world = start_world(config.device)  # one process, or joins torchrun's process group
        try:
            return self._train(args, config, run_dir, demo, world)
        finally:
            world.close()

    def _train(self, args, config, run_dir: str, demo: bool, world) -> int:
        import random

        import numpy as np
        import torch

        from seq2seq.core.distributed import seed_process
        from seq2seq.core.trainer import Trainer, TrainingDiverged

        log = print if world.is_main else _quiet
        if demo:
            log(self.demo_message.format(minutes=f"{config.max_minutes:g}", run_dir=run_dir))
        if config.threads:
            torch.set_num_threads(config.threads)
        os.makedirs(run_dir, exist_ok=True)
        random.seed(config.seed)  # the same initial model on every process
        np.random.seed(config.seed)
        torch.manual_seed(config.seed)
        # rank 0 first: it writes what the others read back (the sentencepiece models)
        task = world.in_turn(lambda: self.make_task(config, run_dir, world.device, log))
        if world.distributed:
            log(
                f"data parallel: world size {world.size} ({world.backend}); an update reads "
                f"{config.accumulate} batch(es) on each process"
            )
            if world.rank:
                seed_process(config.seed, world.rank)  # each process its own dropout noise
        trainer = Trainer(
            task, config, run_dir, trust_checkpoint=args.trust_checkpoint, world=world
        )
        try:
            trainer.train(resume=args.resume)
        except TrainingDiverged as error:
            if world.is_main:
                print(f"error: {error}", file=sys.stderr)
            return EXIT_DIVERGED
        if trainer.interrupted:
            again = "the same torchrun launch with" if world.distributed else self.prog
            log(f"saved {trainer.last_path}; continue with: {again} --out {run_dir} --resume")
            # Ctrl-C is the user's interrupt (130); SIGTERM asks a job to stop, and it did,
            # cleanly and resumably (0: a scheduler's preemption is not a failure)
            return EXIT_INTERRUPTED if trainer.stopped_by == "Ctrl-C" else EXIT_OK
        if args.no_export or not world.is_main:
            return EXIT_OK
        return self.report(config, run_dir, task, log)


def _quiet(*args, **kwargs) -> None:
    """The log of processes other than rank 0."""


# ----------------------------------------------------------------------------- decoding flags


def add_decoding_arguments(
    parser: argparse.ArgumentParser, kind: str, skip: tuple[str, ...] = (), **defaults
) -> None:
    """A flag for every :class:`~export.runtime.options.DecodingOptions` field that applies to
    ``kind`` ("translation" or "language_model"), help text from the dataclass; ``defaults``
    override the dataclass defaults (``beam=5`` for ``translate``). ``max_length`` becomes
    ``--max-length-ratio`` and ``--max-length-offset``; ``--stop`` repeats."""
    import dataclasses

    from export.runtime.options import DecodingOptions

    group = parser.add_argument_group("decoding")
    for f in dataclasses.fields(DecodingOptions):
        if kind not in f.metadata["applies_to"] or f.name in skip:
            continue
        default = defaults.get(f.name, f.default)
        flag = "--" + f.name.replace("_", "-")
        help_text = f.metadata["help"]
        if f.name == "max_length":
            ratio, offset = default
            group.add_argument(
                "--max-length-ratio",
                type=float,
                default=ratio,
                help="at most ratio x source tokens + offset output tokens",
            )
            group.add_argument("--max-length-offset", type=int, default=offset, help="see ratio")
        elif f.name == "stop":
            group.add_argument(
                flag, action="append", default=[], metavar="TEXT", help=help_text + " (repeat)"
            )
        elif f.name == "sample":
            group.add_argument(flag, action="store_true", help=help_text)
        else:
            value_type = int if f.name == "seed" or isinstance(default, int) else float
            group.add_argument(flag, type=value_type, default=default, help=help_text)


def decoding_options_from_args(args: argparse.Namespace, kind: str):
    """The :class:`~export.runtime.options.DecodingOptions` the parsed flags ask for, checked
    for ``kind`` (ValueError naming the option when a value is out of range)."""
    import dataclasses

    from export.runtime.options import DecodingOptions

    values = {}
    for f in dataclasses.fields(DecodingOptions):
        if f.name == "max_length" and hasattr(args, "max_length_ratio"):
            values["max_length"] = (args.max_length_ratio, args.max_length_offset)
        elif hasattr(args, f.name):
            values[f.name] = getattr(args, f.name)
    if values.get("sample"):
        values["beam"] = 1  # --sample overrides the command's default beam
    return DecodingOptions(**values).check_for(kind)
