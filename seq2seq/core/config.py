"""Configuration: dataclasses with defaults and help text, filled from YAML files and CLI flags.

Every field is a config key. A YAML file sets any of them (flat ``key: value`` pairs); every key
is also a command-line flag (``--hidden-size 512`` or ``--hidden_size 512``). Precedence:
defaults < YAML < command line. The resolved config is saved with every run, checkpoint and
bundle, so a result can always be traced to the exact settings that made it.

Values are checked as they are read: type, allowed choices, and range (``--hidden-size -3`` is
refused with the allowed range before any work starts); a family's ``check()`` adds the rules
that tie keys together. Keys that were renamed are still read, from old YAML files, command
lines and checkpoints, with a one-line notice giving the new name (``renamed_keys``).
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import math
import os
import sys
import typing
from dataclasses import dataclass, field
from typing import ClassVar

import yaml


def option(
    default,
    help: str,
    choices: tuple | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    above: float | None = None,
    below: float | None = None,
):
    """A config field with its command-line help text, allowed values, and range: ``minimum``
    / ``maximum`` are inclusive bounds, ``above`` / ``below`` exclusive ones."""
    bounds = {"minimum": minimum, "maximum": maximum, "above": above, "below": below}
    return field(default=default, metadata={"help": help, "choices": choices, **bounds})


@dataclass
class TrainingConfig:
    """Settings of the training loop shared by every model family."""

    # old name -> new name; read with a notice (see update_config)
    renamed_keys: ClassVar[dict[str, str]] = {}

    # --- optimisation ---
    optimizer: str = option("adam", "optimizer", ("adam", "sgd", "rmsprop"))
    learning_rate: float = option(1e-3, "peak learning rate", above=0)
    weight_decay: float = option(0.0, "L2 weight decay (decoupled for adam, i.e. AdamW)", minimum=0)
    momentum: float = option(0.9, "momentum for sgd and rmsprop", minimum=0, below=1)
    adam_betas: tuple = option((0.9, 0.999), "adam beta1, beta2")
    lr_schedule: str = option(
        "plateau",
        "after warmup: constant; plateau (decay when the validation metric stops improving); "
        "cosine (to min_learning_rate at the end of max_steps, or of max_minutes); "
        "linear_tail (constant, then a linear decay to min_learning_rate over the last "
        "decay_fraction of the budget); inverse_sqrt",
        ("constant", "plateau", "cosine", "linear_tail", "inverse_sqrt"),
    )
    decay_fraction: float = option(
        0.2,
        "linear_tail: the share of the budget (steps or minutes) spent decaying",
        above=0,
        maximum=1,
    )
    warmup_steps: int = option(0, "linear learning-rate warmup over this many steps", minimum=0)
    lr_decay_factor: float = option(
        0.5, "plateau: multiply the learning rate by this", above=0, maximum=1
    )
    lr_patience: int = option(
        1, "plateau: evaluations without improvement before a decay", minimum=0
    )
    min_learning_rate: float = option(1e-5, "floor of every schedule", minimum=0)
    clip_grad_norm: float = option(1.0, "clip the global gradient norm to this (0: off)", minimum=0)
    accumulate: int = option(
        1,
        "batches per update (gradient accumulation): the loss is averaged over every "
        "prediction of this many batches before each optimizer step. Per process: under "
        "torchrun an update reads processes x accumulate batches",
        minimum=1,
        maximum=4096,
    )
    label_smoothing: float = option(
        0.1, "label smoothing of the cross-entropy loss", minimum=0, below=1
    )
    init: str = option(
        "xavier",
        "weight init: xavier (input and output weights) + orthogonal (recurrent weights), "
        "or pytorch defaults",
        ("xavier", "pytorch"),
    )

    # --- budget, evaluation, checkpoints ---
    max_steps: int = option(0, "stop after this many updates (0: no limit)", minimum=0)
    max_epochs: int = option(
        0, "stop after this many passes over the data (0: no limit)", minimum=0
    )
    max_minutes: float = option(
        0.0, "stop after this much training time, in minutes (0: none)", minimum=0
    )
    eval_every: int = option(
        500, "evaluate on the validation data, and save last.pt, every N updates", minimum=1
    )
    log_every: int = option(50, "write a train line to metrics.jsonl every N updates", minimum=1)
    patience: int = option(0, "early stopping: evaluations without improvement (0: off)", minimum=0)
    seed: int = option(1, "random seed (data order, init, dropout)", minimum=0)

    # --- hardware ---
    device: str = option("auto", "auto (cuda when available), cpu or cuda")
    amp: str = option(
        "auto",
        "mixed precision: auto (bf16 or fp16 on cuda; bf16 on a CPU with AVX-512 BF16 or AMX, "
        "else off), off, bf16 (cuda, or a CPU with AVX-512 BF16 or AMX), fp16 (cuda only)",
        ("auto", "off", "bf16", "fp16"),
    )
    threads: int = option(0, "CPU threads for torch (0: torch's default)", minimum=0)
    progress: bool = option(True, "show a progress bar")

    def check(self) -> None:
        """Rules that tie several keys together; families extend it. Raises ValueError."""
        if self.lr_schedule in ("cosine", "linear_tail") and not (
            self.max_steps or self.max_minutes
        ):
            raise ValueError(
                f"lr_schedule {self.lr_schedule} needs a budget: max_steps or max_minutes"
            )


def config_fields(config_class) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(config_class)}


def _convert(value, field_type, key: str, origin: str):
    """Turn a YAML or CLI value into the type the field declares."""
    if isinstance(field_type, str):
        field_type = eval(field_type, vars(typing), {})  # annotations are strings (PEP 563)
    if value is None:
        return None
    try:
        if field_type is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError("expected true or false")
        if field_type is tuple:
            if isinstance(value, str):
                value = [v for v in value.replace(",", " ").split()]
            return tuple(float(v) for v in value)
        if typing.get_origin(field_type) is typing.Union:  # Optional[str] etc.
            inner = [t for t in typing.get_args(field_type) if t is not type(None)][0]
            if str(value).lower() in ("none", "null", ""):
                return None
            return inner(value)
        if field_type is int and isinstance(value, float) and not value.is_integer():
            raise ValueError("expected an integer")
        if field_type is int:
            return int(float(value)) if isinstance(value, str) and "e" in value else int(value)
        converted = field_type(value)
        if field_type is float and not math.isfinite(converted):
            raise ValueError("expected a finite number")
        return converted
    except (TypeError, ValueError) as error:
        raise ValueError(f"{origin}: {key}: cannot use {value!r} ({error})") from None


def _check_range(key: str, value, metadata: dict, origin: str) -> None:
    low, high = metadata.get("minimum"), metadata.get("maximum")
    above, below = metadata.get("above"), metadata.get("below")
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    fails = (
        (low is not None and value < low)
        or (high is not None and value > high)
        or (above is not None and value <= above)
        or (below is not None and value >= below)
    )
    if not fails:
        return
    left = f"[{low:g}" if low is not None else (f"({above:g}" if above is not None else "")
    right = f"{high:g}]" if high is not None else (f"{below:g})" if below is not None else "")
    if left and right:
        allowed = f"in {left}, {right}"
    elif low is not None:
        allowed = f"at least {low:g}"
    elif above is not None:
        allowed = f"above {above:g}"
    elif high is not None:
        allowed = f"at most {high:g}"
    else:
        allowed = f"below {below:g}"
    raise ValueError(f"{origin}: {key} must be {allowed}, got {value!r}")


def _unknown_key_error(key: str, known, origin: str) -> ValueError:
    close = difflib.get_close_matches(key, list(known), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return ValueError(f"{origin}: unknown config key {key!r}{hint}")


def notice(message: str) -> None:
    """A one-line notice on stderr (a renamed key, a default that was filled in)."""
    print(f"notice: {message}", file=sys.stderr)


def update_config(config, values: dict, origin: str):
    """Return a copy of ``config`` with ``values`` applied, checking keys, types, choices and
    ranges. A renamed key is read under its new name, with a notice."""
    fields = config_fields(type(config))
    renamed = type(config).renamed_keys
    changes = {}
    for raw_key, value in values.items():
        key = raw_key.replace("-", "_")
        if key in renamed:
            notice(f"{origin}: {key} is now called {renamed[key]}")
            key = renamed[key]
        if key not in fields:
            raise _unknown_key_error(key, fields, origin)
        converted = _convert(value, fields[key].type, key, origin)
        choices = fields[key].metadata.get("choices")
        if choices and converted not in choices:
            raise ValueError(f"{origin}: {key} must be one of {', '.join(choices)}, got {value!r}")
        _check_range(key, converted, fields[key].metadata, origin)
        changes[key] = converted
    return dataclasses.replace(config, **changes)


def load_yaml(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except OSError as error:
        raise ValueError(f"{path}: cannot read config ({error.strerror})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not valid UTF-8; a config is a UTF-8 YAML file") from None
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: not valid YAML ({error})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a config is a mapping of keys to values")
    return data


def config_to_dict(config) -> dict:
    """Plain data (lists, not tuples): what checkpoints and bundles store."""
    return {
        k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()
    }


def save_config(config, path: str) -> None:
    """Write the resolved config as YAML (atomically)."""
    temporary = path + ".tmp"
    with open(temporary, "w", encoding="utf-8") as f:
        yaml.safe_dump(config_to_dict(config), f, sort_keys=False, allow_unicode=True)
    os.replace(temporary, path)


def add_config_arguments(parser: argparse.ArgumentParser, config_class, skip=()) -> None:
    """Add ``--key`` (and ``--key_with_underscores``) for every field of ``config_class``, and
    hidden flags for its renamed keys. Values stay unset (None) unless given, so YAML values
    are only overridden on request."""
    group = parser.add_argument_group("config keys (each also settable in the YAML file)")
    for name, f in config_fields(config_class).items():
        if name in skip:
            continue
        default = f.default if f.default is not dataclasses.MISSING else None
        help_text = f.metadata.get("help", "")
        choices = f.metadata.get("choices")
        if choices:
            help_text += f" ({' | '.join(choices)})"
        help_text += f" [default: {default}]"
        group.add_argument(*_flags(name), dest=name, default=None, metavar="V", help=help_text)
    for old in config_class.renamed_keys:
        group.add_argument(*_flags(old), dest=old, default=None, help=argparse.SUPPRESS)


def _flags(name: str) -> list[str]:
    flags = ["--" + name.replace("_", "-")]
    if "_" in name:
        flags.append("--" + name)
    return flags


def resolve_config(config_class, yaml_path: str | None, args: argparse.Namespace, base=None):
    """defaults (or ``base``) < YAML file < command-line values that were given."""
    config = base if base is not None else config_class()
    if yaml_path:
        config = update_config(config, load_yaml(yaml_path), yaml_path)
    names = [*config_fields(config_class), *config_class.renamed_keys]
    given = {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}
    return update_config(config, given, "command line")


def config_from_dict(config_class, data: dict, origin: str):
    """Rebuild a config saved with a checkpoint or bundle (unknown keys are errors)."""
    return update_config(config_class(), data, origin)
