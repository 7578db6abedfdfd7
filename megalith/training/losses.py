"""The training loss: one term per output by its type, weighted and summed."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from megalith.data.features import CategoryOutput, OutputFeature
from megalith.data.tokenizers import PAD


def output_loss(feature: OutputFeature, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy for categories and text tokens, binary cross-entropy for binary, MSE for
    numbers."""
    output = output.float()  # losses in fp32 even under autocast
    if feature.type == "text":  # next-token logits (B, T, V), targets (B, T); padding ignored
        return F.cross_entropy(output.flatten(0, 1), target.flatten(), ignore_index=PAD)
    if feature.type == "category":
        assert isinstance(feature, CategoryOutput)
        return F.cross_entropy(output, target, label_smoothing=feature.label_smoothing)
    if feature.type == "binary":
        return F.binary_cross_entropy_with_logits(output, target)
    return F.mse_loss(output, target)


def total_loss(
    features: Sequence[OutputFeature],
    outputs: dict[str, torch.Tensor],
    targets: dict[str, torch.Tensor],
) -> torch.Tensor:
    """Weighted sum of every output's loss."""
    losses = [
        feature.weight * output_loss(feature, outputs[feature.name], targets[feature.name])
        for feature in features
    ]
    return torch.stack(losses).sum() if len(losses) > 1 else losses[0]
