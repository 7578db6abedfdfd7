"""Pruning to a MACs target with hardware-aligned widths: `--prune 0.5` removes half of the
multiply-accumulates, and every pruned layer keeps a multiple of 16 channels.

Why both. What users mean by "prune half" is half the compute, not half of each layer's
channels (which leaves about a quarter of the MACs where two pruned convolutions meet). And a
cut in MACs only turns into a cut in time when the kernels that run the narrower layers are as
fast per MAC as before: ONNX Runtime's CPU convolutions are fastest in its blocked layout
(NCHWc, blocks of 8 channels with AVX2 and 16 with AVX-512), which it uses only for channel
counts that are multiples of the block. A CNN pruned to 22 / 44 / 89 channels drops to plain
convolutions and was measured 1.1-1.3x faster at half the MACs; pruned to 16 / 48 / 96 it was
1.9x faster at batch 1 (benchmarks/pruning.py; figures in docs/compress.md). Layers narrower
than two blocks are rounded to whole channels only.

The plan: one keep fraction `k` for every prunable layer (the uniform allocation of Li et al.
2017 and of Torch-Pruning's local pruning), each layer keeping round(k * width) channels rounded
to the alignment; `k` is found by bisection as the largest that brings the MACs per row to at
most (1 - amount) of the original (MACs counted by torch.utils.flop_counter on pruned copies).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import nn

from megalith.compress.channels import count_macs, prunable_layers, prune_with_ratios
from megalith.errors import ConfigError
from megalith.models.blocks import FeatureModel

ALIGN = 16
"""Kept widths are multiples of this: ONNX Runtime's NCHWc block on AVX-512 (a multiple of
AVX2's 8, so it suits both)."""
_BISECTIONS = 12
"""Halvings of the keep fraction's interval: 1/4096, finer than one channel of any layer."""


@dataclass(frozen=True)
class MacsPlan:
    """The keep fraction found, the kept widths and the MACs per row it leads to."""

    keep: float
    widths: dict[str, tuple[int, int]]  # layer name -> (width before, width after)
    macs_before: int
    macs_after: int


def kept_width(width: int, keep: float, align: int = ALIGN) -> int:
    """keep * width rounded (half up) to a multiple of `align` when width >= 2 * align, else to
    a whole channel; at least one block (or one channel), at most `width` (all of it at keep 1)."""
    if keep >= 1:
        return width
    step = align if width >= 2 * align else 1
    return min(width, max(step, step * math.floor(keep * width / step + 0.5)))


def _width(layer: nn.Module) -> int:
    """Output channels (convolution) or neurons (dense layer)."""
    weight = layer.weight
    assert isinstance(weight, torch.Tensor)
    return int(weight.shape[0])


def layer_ratios(model: FeatureModel, keep: float, align: int = ALIGN) -> dict[nn.Module, float]:
    """Torch-Pruning's pruning_ratio_dict that leaves each prunable layer kept_width channels
    (it keeps int(width * (1 - ratio)), so the ratio aims half a channel above the width)."""
    ratios = {}
    for layer in prunable_layers(model):
        width = _width(layer)
        ratios[layer] = max(0.0, 1.0 - (kept_width(width, keep, align) + 0.5) / width)
    return ratios


def plan_macs(
    model: FeatureModel, example: dict[str, torch.Tensor], amount: float, align: int = ALIGN
) -> MacsPlan:
    """The largest uniform keep fraction whose aligned widths remove at least `amount` of the
    MACs per row. The model is not changed (copies are pruned to count).

    Raises:
        ConfigError: even the narrowest widths (one block per layer) keep more than
            1 - amount of the MACs: the layers that may be pruned hold too little of them.
    """
    before = count_macs(model, example)
    counted: dict[tuple[int, ...], int] = {}  # many keep fractions give the same widths

    def macs_at(keep: float) -> int:
        widths = tuple(kept_width(_width(m), keep, align) for m in prunable_layers(model))
        if widths not in counted:
            trial = copy.deepcopy(model)
            prune_with_ratios(trial, example, layer_ratios(trial, keep, align))
            counted[widths] = count_macs(trial, example)
        return counted[widths]

    target = (1.0 - amount) * before
    floor = macs_at(0.0)
    if floor > target:
        most = math.floor((1 - floor / before) * 100) / 100  # rounded down: that amount works
        raise ConfigError(
            f"prune {amount}: the layers that may be pruned hold too little of the MACs; even "
            f"the narrowest widths keep {floor / before:.1%} of them (at most {most:.2f} can "
            "be removed). Give a smaller amount, or prune by "
            "channels (--prune-by channels; compress: {prune_by: channels})"
        )
    low, high, low_macs = 0.0, 1.0, floor
    for _ in range(_BISECTIONS):
        middle = (low + high) / 2
        macs = macs_at(middle)
        if macs <= target:
            low, low_macs = middle, macs
        else:
            high = middle
    names = {id(m): name for name, m in model.named_modules()}
    widths = {
        names[id(layer)]: (_width(layer), kept_width(_width(layer), low, align))
        for layer in prunable_layers(model)
    }
    return MacsPlan(keep=low, widths=widths, macs_before=before, macs_after=low_macs)


def prune_to_macs(
    model: FeatureModel, example: dict[str, torch.Tensor], amount: float, align: int = ALIGN
) -> MacsPlan:
    """Remove at least `amount` (0 < amount < 1) of the MACs per row of `model`, in place, with
    every prunable layer keeping the same fraction of its channels rounded to `align`.

    Args:
        model: the network (put in eval mode); pruned in place by Torch-Pruning.
        example: a few encoded rows (inputs by name) to trace the network and count MACs.
        amount: the fraction of the multiply-accumulates per row to remove.
        align: kept widths are multiples of it in layers at least twice as wide.
    Returns:
        The plan applied: keep fraction, widths before / after, MACs per row before / after.
    Raises:
        ConfigError: the target cannot be reached (see plan_macs).
    """
    plan = plan_macs(model, example, amount, align)
    prune_with_ratios(model, example, layer_ratios(model, plan.keep, align))
    return plan
