"""Choosing the device, the autocast dtype and whether to compile, from 'auto' or a setting."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

from megalith.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA, then Apple MPS, then CPU; anything else must be a device torch knows."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise ConfigError(
            f"train.device: unknown device '{name}' (use auto, cpu, cuda, cuda:N)"
        ) from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "train.device: 'cuda' asked for but no CUDA device is available; use auto"
        )
    return device


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for plain fp32. 'auto' means bf16 on a GPU that supports it."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        if device.type == "cpu":
            raise ConfigError("train.precision: fp16 needs a GPU; use bf16 or fp32 on CPU")
        return torch.float16
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


def resolve_compile(setting: bool | str, device: torch.device) -> bool:
    """'auto' compiles on CUDA only: on CPU the compile time rarely pays back for small models."""
    if setting == "auto":
        return device.type == "cuda"
    return bool(setting)


@contextlib.contextmanager
def autocast(device: torch.device, dtype: torch.dtype | None) -> Iterator[None]:
    """Mixed precision when dtype is set, otherwise nothing."""
    if dtype is None:
        yield
        return
    with torch.autocast(device_type=device.type, dtype=dtype):
        yield


def usable_threads(count: int | None) -> int | None:
    """`count` capped at this machine's cores (os.cpu_count()): more threads than cores only
    wait for each other, and a config written on a big machine still runs on a small one."""
    return None if count is None else min(count, os.cpu_count() or 1)


def threads_notice(count: int | None) -> str | None:
    """One line saying `train.threads: count` is capped here, or None when it is not."""
    usable = usable_threads(count)
    if usable == count:
        return None
    return f"train.threads {count}: more than the {usable} CPU core(s) here; training uses {usable}"


@contextlib.contextmanager
def threads(count: int | None) -> Iterator[None]:
    """PyTorch's intra-op CPU threads set to `count` (capped at the cores, usable_threads)
    inside the block, restored after it (None: left as they are)."""
    count = usable_threads(count)
    if count is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)
