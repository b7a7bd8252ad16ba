"""The checkpoint contract: one function builds the payload, one writes it atomically, one loads
it safely and checks its format.

A payload holds tensors and plain data only (dicts, lists, str, numbers, bytes): the model's
state dict, the resolved config as a dict, the family's extras (tokenizers as their model bytes
or token lists), the progress counters, and, in ``last.pt``, the optimizer, schedule, gradient
scaler, RNG states (as tensors and lists) and the task's own state. So it loads with
``torch.load(weights_only=True)``, which refuses to run code a shared file might carry. A
``last.pt`` written by several processes (torchrun) adds ``ranks``: each process's RNG and task
state, in rank order (``rng`` and ``task`` are rank 0's).

Format history: 1 pickled numpy's RNG state (an ndarray), so its ``last.pt`` files need
``--trust-checkpoint`` to load; 2 is plain data throughout.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import random
import re
import sys

import numpy as np
import torch

CHECKPOINT_FORMAT = 2
READABLE_FORMATS = (1, 2)

# the keys a training checkpoint (last.pt) adds to an inference one (best.pt)
TRAINING_STATE_KEYS = ("optimizer", "schedule", "scaler", "rng", "task")


def checkpoint_payload(
    kind: str,
    config,
    model_state: dict,
    extras: dict,
    progress: dict | None = None,
    training_state: dict | None = None,
) -> dict:
    """The payload of a checkpoint of a ``kind`` model (``translation``, ``language_model``,
    ...). ``config`` is the run's config (a dataclass or a dict); ``extras`` what the family
    needs to rebuild the model for inference (tokenizer states, label names, ...);
    ``training_state`` (only in ``last.pt``) holds :data:`TRAINING_STATE_KEYS`."""
    if dataclasses.is_dataclass(config):
        config = {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()
        }
    payload = {
        "format": CHECKPOINT_FORMAT,
        "kind": kind,
        "config": dict(config),
        "model": model_state,
        "extras": extras,
        "progress": dict(progress or {}),
    }
    if training_state is not None:
        missing = [k for k in TRAINING_STATE_KEYS if k not in training_state]
        if missing:
            raise ValueError(f"training_state lacks {', '.join(missing)}")
        payload.update(training_state)
    return payload


def save_checkpoint(payload: dict, path: str) -> None:
    """Write ``payload`` to ``path`` so that a crash at any moment leaves either the old file or
    the new one, never half of one."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    temporary = path + ".tmp"
    try:
        with open(temporary, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:  # a full disk or Ctrl-C mid-write: keep the old file, drop the half
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def load_checkpoint(
    path: str, map_location="cpu", trust: bool = False, expected_kind: str | None = None
) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint`, with ``weights_only=True``.

    A file that carries pickled Python objects is refused with a clear ValueError, since
    unpickling them could run any code. ``trust`` (the commands' ``--trust-checkpoint``) loads
    it anyway, after a one-line warning: for checkpoints this toolkit wrote before format 2,
    and only for files you trust. ``expected_kind`` refuses a checkpoint of another kind."""
    if os.path.isdir(path):
        raise ValueError(f"{path}: is a directory, not a checkpoint file")
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such checkpoint")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        found = re.search(r"GLOBAL (\S+)", str(error))
        if found is None:  # not objects: a damaged or foreign file
            detail = str(error).split("WeightsUnpickler error:")[-1].strip().split("\n")[0]
            raise ValueError(
                f"{path}: not a readable checkpoint ({type(error).__name__}: {detail[:200]})"
            ) from None
        if not trust:
            raise ValueError(
                f"{path}: the checkpoint holds a pickled {found.group(1)}, which could run code "
                "when loaded, so it is refused. Checkpoints written by this toolkit before "
                "checkpoint format 2 hold such objects: if you trust this file, pass "
                "--trust-checkpoint to load it anyway."
            ) from None
        print(
            f"warning: {path}: loading pickled Python objects (--trust-checkpoint); this runs "
            "any code the file carries",
            file=sys.stderr,
        )
        payload = _load_untrusted(path, map_location)
    except Exception as error:  # torch raises many types for a damaged file
        raise ValueError(
            f"{path}: not a readable checkpoint ({type(error).__name__}: {error})"
        ) from None
    _check_payload(payload, path)
    if expected_kind is not None and payload["kind"] != expected_kind:
        raise ValueError(
            f"{path}: a {payload['kind']} checkpoint, not a {expected_kind.replace('_', ' ')} one"
        )
    return payload


def _load_untrusted(path: str, map_location) -> dict:
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except Exception as error:
        raise ValueError(
            f"{path}: not a readable checkpoint ({type(error).__name__}: {error})"
        ) from None


def _check_payload(payload, path: str) -> None:
    if not isinstance(payload, dict) or "model" not in payload or "kind" not in payload:
        raise ValueError(f"{path}: not a checkpoint of this toolkit")
    version = payload.get("format")
    if version not in READABLE_FORMATS:
        newer = isinstance(version, int) and version > CHECKPOINT_FORMAT
        reason = "a newer version of the toolkit wrote it" if newer else "unknown format"
        raise ValueError(
            f"{path}: checkpoint format {version!r}, this toolkit reads formats "
            f"{', '.join(map(str, READABLE_FORMATS))} ({reason})"
        )


def capture_rng_state() -> dict:
    """Every RNG's state, as tensors and plain lists (safe to load)."""
    name, keys, position, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [name, keys.tolist(), int(position), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():  # this process's GPU only (one per process under torchrun)
        state["cuda_device"] = torch.cuda.get_rng_state()
    return state


def restore_rng_state(state: dict) -> None:
    random.setstate(_as_python_state(state["python"]))
    name, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), position, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if torch.cuda.is_available():
        if "cuda_device" in state:
            torch.cuda.set_rng_state(state["cuda_device"])
        elif "cuda" in state:  # written before: every GPU's state
            torch.cuda.set_rng_state_all(state["cuda"])


def _as_python_state(state) -> tuple:
    version, internal, gauss = state
    return (version, tuple(internal), gauss)
