"""Loss and task metrics of a model over a whole split."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from megalith.batching import forward_in_batches
from megalith.data.features import OutputFeature
from megalith.data.specs import OutputSpec
from megalith.data.tensors import TensorTable
from megalith.evaluate.metrics import compute_metrics
from megalith.training.losses import total_loss


def evaluate_table(
    model: nn.Module,
    table: TensorTable,
    outputs: Sequence[OutputFeature],
    specs: Sequence[OutputSpec],
    batch_size: int,
    device: torch.device,
    dtype: torch.dtype | None,
) -> dict[str, float]:
    """{'loss': ..., 'accuracy': ..., ...} for every row of `table` (targets required)."""
    predictions = forward_in_batches(model, table, batch_size, device, dtype)
    targets = {name: t.cpu() for name, t in table.targets.items()}
    metrics = {"loss": float(total_loss(outputs, predictions, targets))}
    metrics.update(compute_metrics(specs, predictions, targets))
    return metrics
