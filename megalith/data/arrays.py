"""Encoded columns are numpy arrays: training wraps them as tensors, the runtime uses them as is.

Every encoder's transform is written once, in numpy (`encode`), so the torch-free runtime
(megalith.runtime) and training compute the same numbers; these two helpers are the only places
where the encoders meet torch, and they never import it at module level.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def to_tensor(array: np.ndarray) -> torch.Tensor:
    """The array as a CPU tensor sharing its memory (torch is imported on first use)."""
    import torch

    return torch.from_numpy(array)


def as_float64(outputs: torch.Tensor | np.ndarray) -> np.ndarray:
    """Model outputs (a tensor of any dtype and device, or an array) as a float64 CPU array."""
    if isinstance(outputs, np.ndarray):
        return outputs.astype(np.float64, copy=False)
    return outputs.detach().cpu().double().numpy()
