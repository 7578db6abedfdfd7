"""Loss and task metrics of a model over a whole split."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from megalith.batching import forward_batches, forward_in_batches
from megalith.data.features import OutputFeature
from megalith.data.specs import OutputSpec
from megalith.data.tensors import TensorTable
from megalith.data.tokenizers import PAD
from megalith.evaluate.metrics import compute_metrics
from megalith.training.losses import class_weight_tensors, total_loss


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
    if any(spec.type == "text" for spec in specs):
        return evaluate_tokens(model, table, outputs, batch_size, device, dtype)
    predictions = forward_in_batches(model, table, batch_size, device, dtype)
    targets = {name: t.cpu() for name, t in table.targets.items()}
    weights = class_weight_tensors(specs)
    metrics = {"loss": float(total_loss(outputs, predictions, targets, class_weights=weights))}
    metrics.update(compute_metrics(specs, predictions, targets))
    return metrics


def evaluate_tokens(
    model: nn.Module,
    table: TensorTable,
    outputs: Sequence[OutputFeature],
    batch_size: int,
    device: torch.device,
    dtype: torch.dtype | None,
) -> dict[str, float]:
    """Loss, perplexity and next-token accuracy of text outputs, batch by batch.

    Logits (B, T, V) of a whole split would not fit in memory, so sums are kept instead; the
    loss is the mean over all non-padding target tokens (not the mean of batch means).
    """
    nll = {f.name: torch.zeros((), dtype=torch.float64, device=device) for f in outputs}
    correct = {f.name: torch.zeros((), dtype=torch.float64, device=device) for f in outputs}
    tokens = dict.fromkeys(nll, 0)
    for batch, predicted in forward_batches(model, table, batch_size, device, dtype):
        for feature in outputs:
            logits = predicted[feature.name].float().flatten(0, 1)  # (B*T, V)
            target = batch.targets[feature.name].flatten()  # (B*T,)
            real = target != PAD
            nll[feature.name] += F.cross_entropy(logits, target, ignore_index=PAD, reduction="sum")
            correct[feature.name] += ((logits.argmax(-1) == target) & real).sum()
            tokens[feature.name] += int(real.sum())
    metrics: dict[str, float] = {"loss": 0.0}
    for feature in outputs:
        count = max(tokens[feature.name], 1)
        mean = float(nll[feature.name]) / count
        metrics["loss"] += feature.weight * mean
        prefix = f"{feature.name}/" if len(outputs) > 1 else ""
        metrics[prefix + "perplexity"] = math.exp(min(mean, 700.0))  # exp(710) overflows
        metrics[prefix + "token_accuracy"] = float(correct[feature.name]) / count
    return metrics
