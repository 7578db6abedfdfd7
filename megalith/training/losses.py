"""The training loss: one term per output by its type, weighted and summed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F

from megalith.data.features import CategoryOutput, OutputFeature
from megalith.data.specs import OutputSpec
from megalith.data.tokenizers import PAD


def output_loss(
    feature: OutputFeature,
    output: torch.Tensor,
    target: torch.Tensor,
    tokens: torch.Tensor | None = None,
    class_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cross-entropy for categories and text tokens, binary cross-entropy for binary, MSE for
    numbers. Text: the mean over the batch's real (non-padding) target tokens, or with `tokens`
    their sum divided by it. `class_weights` (K,) (binary: negative, positive) weights each
    row's loss by its class: the weighted mean of categories divides by the rows' summed
    weights (PyTorch's cross_entropy), binary's by the row count."""
    output = output.float()  # losses in fp32 even under autocast
    if feature.type == "text":  # next-token logits (B, T, V), targets (B, T); padding ignored
        logits, flat = output.flatten(0, 1), target.flatten()
        if tokens is None:
            return F.cross_entropy(logits, flat, ignore_index=PAD)
        return F.cross_entropy(logits, flat, ignore_index=PAD, reduction="sum") / tokens
    if feature.type == "category":
        assert isinstance(feature, CategoryOutput)
        return F.cross_entropy(
            output, target, weight=class_weights, label_smoothing=feature.label_smoothing
        )
    if feature.type == "binary":
        rows = None if class_weights is None else class_weights[target.long()]  # (B,)
        return F.binary_cross_entropy_with_logits(output, target, weight=rows)
    return F.mse_loss(output, target)


def total_loss(
    features: Sequence[OutputFeature],
    outputs: dict[str, torch.Tensor],
    targets: dict[str, torch.Tensor],
    tokens: Mapping[str, torch.Tensor] | None = None,
    class_weights: Mapping[str, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Weighted sum of every output's loss; `tokens` sets the divisor of text outputs' summed
    token losses (see `step_token_shares`); `class_weights` from `class_weight_tensors`."""
    tokens, class_weights = tokens or {}, class_weights or {}
    losses = [
        feature.weight
        * output_loss(
            feature,
            outputs[feature.name],
            targets[feature.name],
            tokens.get(feature.name),
            class_weights.get(feature.name),
        )
        for feature in features
    ]
    return torch.stack(losses).sum() if len(losses) > 1 else losses[0]


def class_weight_tensors(
    specs: Sequence[OutputSpec], device: torch.device | str = "cpu"
) -> dict[str, torch.Tensor]:
    """{output name: float32 (K,) loss weight per class} for outputs with class_weights set;
    made once per run, not per step."""
    return {
        spec.name: torch.tensor(spec.class_weights, dtype=torch.float32, device=device)
        for spec in specs
        if spec.class_weights
    }


def step_token_shares(
    targets: Mapping[str, torch.Tensor], names: Sequence[str], rows: torch.Tensor, parts: int
) -> dict[str, torch.Tensor]:
    """For each text output, the real target tokens of one optimizer step's rows (every
    accumulated batch on every process) divided by `parts` (batches x processes).

    Dividing each batch's summed token loss by this share, then averaging over the accumulated
    batches and the processes as training does, gives the mean over every token of the step —
    the same gradient as one big batch, however the padding falls between batches.
    """
    return {name: (targets[name][rows] != PAD).sum().clamp(min=1) / parts for name in names}
