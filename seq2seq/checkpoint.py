"""Checkpoints: written atomically (temporary file, fsync, rename), read with clear errors."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


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


def load_checkpoint(path: str, map_location="cpu") -> dict:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Our checkpoints hold tokenizers and RNG states besides tensors, so they are read with
    ``weights_only=False``: load only checkpoints you trust, as with any pickle."""
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such checkpoint")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as error:  # torch raises many types for a damaged file
        raise ValueError(
            f"{path}: not a readable checkpoint ({type(error).__name__}: {error})"
        ) from None
    if not isinstance(payload, dict) or "model" not in payload or "kind" not in payload:
        raise ValueError(f"{path}: not a checkpoint of this toolkit")
    return payload


def capture_rng_state() -> dict:
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
