"""Where training runs: the device, and the mixed-precision dtype the hardware supports."""

from __future__ import annotations

import torch


def resolve_device(name: str) -> torch.device:
    """``auto`` (cuda when torch sees a GPU, else cpu), ``cpu`` or ``cuda[:N]``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device cuda was asked for, but torch sees no CUDA GPU")
    return torch.device(name)


def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for full precision."""
    if amp == "off":
        return None
    if amp == "auto":
        # bf16 where the hardware runs it natively (the same range as fp32, so no loss
        # scaling); on a CPU without it oneDNN would emulate it, slower than fp32
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if device.type == "cpu" and cpu_has_native_bf16() else None
    if amp == "fp16":
        if device.type != "cuda":
            raise ValueError("amp fp16 needs a CUDA device; on CPU use bf16 or off")
        return torch.float16
    if device.type == "cpu" and not cpu_has_native_bf16():
        raise ValueError(
            "amp bf16 needs a CPU with native bfloat16 (AVX-512 BF16 or AMX); this one has "
            f"{torch.backends.cpu.get_cpu_capability()}, where oneDNN's recurrent layers refuse "
            "bfloat16: use amp off"
        )
    return torch.bfloat16


def describe_amp(amp: str, dtype: torch.dtype | None, device: torch.device) -> str:
    """One line for the training log: the precision chosen and why."""
    if dtype is None:
        if amp == "auto" and device.type == "cpu":
            return "precision: float32 (amp auto: this CPU has no native bfloat16)"
        return "precision: float32"
    name = {torch.bfloat16: "bfloat16", torch.float16: "float16"}[dtype]
    why = " (amp auto: native on this hardware)" if amp == "auto" else ""
    return f"precision: {name} autocast{why}, float32 weights and optimizer"


def cpu_has_native_bf16() -> bool:
    """Whether oneDNN runs bfloat16 natively here (its LSTM/GRU kernels refuse it otherwise)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False
