"""The arithmetic a run computes in: float32 throughout, or bfloat16 matrix products (mixed precision).

Under "bf16" the matrix products (linear layers, LSTMs, the energy network) run in bfloat16 through
torch.autocast, while master weights, optimiser state and every loss reduction (the output layer's
softmax and its sums, KL, the MI estimators' log-mean-exp, the metrics) stay float32: the model code
casts those inputs back to float32 where they are reduced. "auto" picks bf16 where the hardware
multiplies it natively (a CUDA GPU that supports it, a CPU with AVX512-BF16 or AMX) and fp32
elsewhere; a run records the precision it resolved to. Measurements: docs/cpu-notes.md.
"""

from __future__ import annotations

import functools
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import torch

from .errors import SettingError

PRECISIONS = ("fp32", "bf16")
CHOICES = (*PRECISIONS, "auto")


@functools.cache
def _cpu_has_bf16() -> bool:
    """AVX512-BF16 or AMX-BF16 in the CPU's flags (Linux); False where they cannot be read."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def native_bf16(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and _cpu_has_bf16()


def resolve(name: str, device: torch.device) -> str:
    """A concrete precision ("fp32" or "bf16") for a --precision value on this device."""
    if name == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    if name not in PRECISIONS:
        raise SettingError(f"precision must be one of {CHOICES}, not {name!r}")
    return name


def autocast(precision: str, device: torch.device | str) -> AbstractContextManager:
    """The context a forward pass runs in. The cast cache is off: a step may update the weights
    inside one context (LaggingVAE's inner loop), and CUDA graph capture needs it off too."""
    if precision == "fp32":
        return nullcontext()
    if precision != "bf16":
        raise SettingError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    kind = torch.device(device).type
    return torch.autocast(kind, dtype=torch.bfloat16, cache_enabled=False)
