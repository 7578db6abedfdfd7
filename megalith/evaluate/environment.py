"""Where a run trained: versions and device, recorded in eval.json for the report."""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version

import torch


def describe_environment(device: torch.device) -> dict[str, str]:
    """Versions of python, torch and megalith, and the device: 'cuda:0 (NVIDIA H100 ...)'."""
    try:
        megalith_version = version("megalith")
    except PackageNotFoundError:  # running from a source tree that is not installed
        megalith_version = "unknown"
    name = str(device)
    if device.type == "cuda" and torch.cuda.is_available():
        name += f" ({torch.cuda.get_device_name(device)})"
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "megalith": megalith_version,
        "device": name,
    }
