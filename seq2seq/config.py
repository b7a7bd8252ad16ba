"""Configuration: dataclasses with defaults and help text, filled from YAML files and CLI flags.

Every field is a config key. A YAML file sets any of them (flat ``key: value`` pairs); every key
is also a command-line flag (``--hidden-size 512`` or ``--hidden_size 512``). Precedence:
defaults < YAML < command line. The resolved config is saved with every run, checkpoint and
bundle, so a result can always be traced to the exact settings that made it.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import os
import typing
from dataclasses import dataclass, field

import yaml


def option(default, help: str, choices: tuple | None = None):
    """A config field with its command-line help text (and allowed values)."""
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass
class TrainingConfig:
    """Settings of the training loop shared by translation and language models."""

    # --- optimisation ---
    optimizer: str = option("adam", "optimizer", ("adam", "sgd", "rmsprop"))
    learning_rate: float = option(1e-3, "peak learning rate")
    weight_decay: float = option(0.0, "L2 weight decay (decoupled for adam, i.e. AdamW)")
    momentum: float = option(0.9, "momentum for sgd and rmsprop")
    adam_betas: tuple = option((0.9, 0.999), "adam beta1, beta2")
    lr_schedule: str = option(
        "plateau",
        "after warmup: constant; plateau (decay when the dev metric stops improving); "
        "cosine (to min_learning_rate at the end of max_steps, or of max_minutes); "
        "linear_tail (constant, then a linear decay to min_learning_rate over the last "
        "decay_fraction of the budget); inverse_sqrt",
        ("constant", "plateau", "cosine", "linear_tail", "inverse_sqrt"),
    )
    decay_fraction: float = option(
        0.2, "linear_tail: the share of the budget (steps or minutes) spent decaying"
    )
    warmup_steps: int = option(0, "linear learning-rate warmup over this many steps")
    lr_decay_factor: float = option(0.5, "plateau: multiply the learning rate by this")
    lr_patience: int = option(1, "plateau: evaluations without improvement before a decay")
    min_learning_rate: float = option(1e-5, "floor of every schedule")
    clip_grad_norm: float = option(1.0, "clip the global gradient norm to this (0: off)")
    label_smoothing: float = option(0.1, "label smoothing of the cross-entropy loss")
    init: str = option(
        "xavier",
        "weight init: xavier (input and output weights) + orthogonal (recurrent weights), "
        "or pytorch defaults",
        ("xavier", "pytorch"),
    )

    # --- budget, evaluation, checkpoints ---
    max_steps: int = option(0, "stop after this many updates (0: no limit)")
    max_epochs: int = option(0, "stop after this many passes over the data (0: no limit)")
    max_minutes: float = option(0.0, "stop after this much training time, in minutes (0: none)")
    eval_every: int = option(500, "evaluate on dev, and save last.pt, every N updates")
    log_every: int = option(50, "write a train line to metrics.jsonl every N updates")
    patience: int = option(0, "early stopping: evaluations without improvement (0: off)")
    seed: int = option(1, "random seed (data order, init, dropout)")

    # --- hardware ---
    device: str = option("auto", "auto (cuda when available), cpu or cuda")
    amp: str = option(
        "auto",
        "mixed precision: auto (bf16 or fp16 on cuda, off on cpu), off, bf16 (cuda, or a CPU "
        "with AVX-512 BF16 or AMX), fp16 (cuda only)",
        ("auto", "off", "bf16", "fp16"),
    )
    threads: int = option(0, "CPU threads for torch (0: torch's default)")
    progress: bool = option(True, "show a progress bar")


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
        return field_type(value)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{origin}: {key}: cannot use {value!r} ({error})") from None


def _unknown_key_error(key: str, known, origin: str) -> ValueError:
    close = difflib.get_close_matches(key, list(known), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return ValueError(f"{origin}: unknown config key {key!r}{hint}")


def update_config(config, values: dict, origin: str):
    """Return a copy of ``config`` with ``values`` applied, checking keys, types and choices."""
    fields = config_fields(type(config))
    changes = {}
    for raw_key, value in values.items():
        key = raw_key.replace("-", "_")
        if key not in fields:
            raise _unknown_key_error(key, fields, origin)
        converted = _convert(value, fields[key].type, key, origin)
        choices = fields[key].metadata.get("choices")
        if choices and converted not in choices:
            raise ValueError(f"{origin}: {key} must be one of {', '.join(choices)}, got {value!r}")
        changes[key] = converted
    return dataclasses.replace(config, **changes)


def load_yaml(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except OSError as error:
        raise ValueError(f"{path}: cannot read config ({error.strerror})") from None
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: not valid YAML ({error})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a config is a mapping of keys to values")
    return data


def save_config(config, path: str) -> None:
    """Write the resolved config as YAML (atomically)."""
    data = {
        k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()
    }
    temporary = path + ".tmp"
    with open(temporary, "w", encoding="utf-8") as f:
        yaml.safe_dump(data, f, sort_keys=False, allow_unicode=True)
    os.replace(temporary, path)


def add_config_arguments(parser: argparse.ArgumentParser, config_class, skip=()) -> None:
    """Add ``--key`` (and ``--key_with_underscores``) for every field of ``config_class``.
    Values stay unset (None) unless given, so YAML values are only overridden on request."""
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
        flags = ["--" + name.replace("_", "-")]
        if "_" in name:
            flags.append("--" + name)
        group.add_argument(*flags, dest=name, default=None, metavar="V", help=help_text)


def resolve_config(config_class, yaml_path: str | None, args: argparse.Namespace, base=None):
    """defaults (or ``base``) < YAML file < command-line values that were given."""
    config = base if base is not None else config_class()
    if yaml_path:
        config = update_config(config, load_yaml(yaml_path), yaml_path)
    given = {
        name: getattr(args, name)
        for name in config_fields(config_class)
        if getattr(args, name, None) is not None
    }
    return update_config(config, given, "command line")


def config_from_dict(config_class, data: dict, origin: str):
    """Rebuild a config saved with a checkpoint or bundle (unknown keys are errors)."""
    return update_config(config_class(), data, origin)


@dataclass
class TranslationConfig(TrainingConfig):
    """Everything a translation run needs: data, vocabulary, model, training, evaluation."""

    # --- data ---
    train_src: str = option("", "training source file, one sentence per line")
    train_tgt: str = option("", "training target file, line-aligned with train_src")
    dev_src: str = option("", "dev source file (model selection, early stopping)")
    dev_tgt: str = option("", "dev target file")
    max_length: int = option(200, "drop training pairs with a side longer than this (subwords)")
    max_length_ratio: float = option(0.0, "drop pairs whose length ratio exceeds this (0: off)")
    batch_tokens: int = option(
        2048, "tokens per batch: sentences x the longest side in the batch, padding included"
    )
    # --- vocabulary ---
    vocab_size: int = option(8000, "sentencepiece vocabulary size (per side unless joint)")
    joint_vocab: bool = option(True, "one sentencepiece model for both languages")
    spm_model_type: str = option("unigram", "sentencepiece model type", ("unigram", "bpe"))
    target_pieces: str = option(
        "seen",
        "joint vocabulary: the target side (embedding and output layer) keeps only the pieces "
        "seen in the training targets, plus every single character (seen: about half of a "
        "joint vocabulary, so training and decoding are faster), or all of them",
        ("seen", "all"),
    )
    # --- model ---
    cell: str = option("lstm", "recurrent cell", ("lstm", "gru", "rnn"))
    embedding_size: int = option(256, "embedding size")
    hidden_size: int = option(256, "hidden size (a bidirectional encoder splits it in two)")
    encoder_layers: int = option(2, "encoder layers")
    decoder_layers: int = option(2, "decoder layers")
    bidirectional: bool = option(True, "bidirectional encoder")
    attention: str = option("general", "Luong attention score", ("dot", "general", "concat"))
    input_feeding: bool = option(
        False, "feed the previous attentional vector to the decoder (slower: a loop over time)"
    )
    dropout: float = option(0.3, "dropout between layers and on the attentional vector")
    embedding_dropout: float = option(0.1, "dropout on embeddings")
    tie_output_embeddings: bool = option(
        True, "share the target embedding with the output layer (needs embedding == hidden)"
    )
    share_embeddings: bool = option(False, "share source and target embeddings (joint vocab)")
    # --- evaluation during training ---
    eval_beam: int = option(1, "beam size for dev BLEU during training (1: greedy, fastest)")
    eval_batch_size: int = option(64, "sentences per batch when decoding dev")
    selection_metric: str = option(
        "bleu", "dev metric that picks best.pt and drives early stopping", ("bleu", "chrf", "nll")
    )
