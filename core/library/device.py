"""Choosing where tensors live: CUDA when present, else the CPU."""

from __future__ import annotations

import ctypes

import torch

from .errors import SettingError


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SettingError(f"device {name!r} asked for, but no CUDA device is available")
    return torch.device(name)


def set_tf32(on: bool) -> None:
    """Float32 matrix products on CUDA in TF32 (10-bit mantissas, several times the float32 rate on
    Ampere and later) or in full float32: cuBLAS's products and cuDNN's, the LSTMs' among them
    (PyTorch's own default lets cuDNN use TF32 and cuBLAS not). The flags are the process's: the
    training loop sets them for its run and leaves them so."""
    torch.backends.cuda.matmul.allow_tf32 = on
    torch.backends.cudnn.allow_tf32 = on


def keep_freed_memory() -> bool:
    """Have glibc keep freed memory in the process for reuse (True where it could).

    By default glibc gives each freed block of over 32 MB, and a free heap top over its trim
    threshold, back to the kernel, so the largest tensors of a training step (the output layer's
    [tokens, vocabulary] scores and their gradient) arrive as fresh pages every step; faulting
    those in costs time every step (measured: docs/cpu-notes.md). A command process
    calls this once (core.commands.cli); without glibc (macOS, musl) nothing changes.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_max = -1, -4  # glibc's malloc.h
    return bool(libc.mallopt(m_mmap_max, 0)) and bool(libc.mallopt(m_trim_threshold, 2**31 - 1))
