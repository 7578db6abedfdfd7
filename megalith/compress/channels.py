"""Structured pruning of one network with Torch-Pruning: which layers may lose channels, the
pruning itself, and the size figures (parameters, MACs) before and after.

Torch-Pruning (Fang et al., "DepGraph: Towards Any Structural Pruning", CVPR 2023) traces the
network once and groups every layer whose channels must be removed together (a convolution's
outputs, the batch norm after it, the next convolution's inputs, the residual additions that
tie whole stages together). Each group is scored by the L2 norm of its weights (the magnitude
criterion of Li et al., "Pruning Filters for Efficient ConvNets", 2017) and the weakest
`amount` of its channels are cut out, so the layers become physically narrower.

Only hidden widths are pruned: the convolutions of an image backbone, the combiner's dense
layers, and the inner (4x) width of a Transformer encoder's feed-forward blocks. Embeddings,
recurrent layers, attention projections, the width of a Transformer's residual stream and the
output heads keep their sizes, so inputs, outputs and the attention heads (and their count)
stay as trained. Where Torch-Pruning cannot follow channels through a concatenation of
differently shaped features (a text CNN encoder's max-pooled convolutions; an image backbone's
last convolution when other inputs are concatenated to it), the group touches a kept layer and
it is left whole: less is pruned, never the wrong channels.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from megalith.errors import missing_extra
from megalith.models.attention import FeedForward
from megalith.models.blocks import FeatureModel, ImageEncoder

PRUNABLE_ARCHS = ("mlp", "cnn", "resnet")
"""The model families structured pruning handles (every input type they take)."""
_WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.RNNBase, nn.Embedding)
"""Layers Torch-Pruning might narrow; those not chosen by `prunable_layers` are kept whole."""


def prunable_layers(model: FeatureModel) -> list[nn.Module]:
    """The layers whose output channels / neurons may be removed (see the module docstring)."""
    chosen: list[nn.Module] = []
    for encoder in model.encoders:
        if isinstance(encoder, ImageEncoder):
            chosen += [m for m in encoder.backbone.modules() if isinstance(m, nn.Conv2d)]
        for module in encoder.modules():
            if isinstance(module, FeedForward):
                chosen.append(module[0])  # dim -> 4 dim; its partner module[2] shrinks its input
    chosen += [m for m in model.combiner if isinstance(m, nn.Linear)]
    return chosen


def prune_channels(model: FeatureModel, example: dict[str, torch.Tensor], amount: float) -> None:
    """Remove `amount` (0 < amount < 1) of the channels of every prunable layer, in place.

    Args:
        model: the network; put in eval mode (batch norms keep their statistics).
        example: one or a few encoded rows (inputs by name) to trace the network with.
        amount: the fraction of each layer's output channels / neurons removed (rounded
            down, keeping at least one); MACs shrink by about (1 - amount)^2 where two pruned
            layers meet.
    Raises:
        MegalithError: Torch-Pruning is not installed (names the `compress` extra).
    """
    ratios = {}
    for layer in prunable_layers(model):
        weight = layer.weight
        assert isinstance(weight, torch.Tensor)
        width = int(weight.shape[0])
        # Torch-Pruning keeps int(width * (1 - ratio)) and leaves a layer whole where that is 0:
        # aim half a channel above one instead, so a narrow layer keeps one channel, not all
        keeps_none = int(width * (1 - amount)) < 1
        ratios[layer] = max(0.0, 1.0 - 1.5 / width) if keeps_none else amount
    prune_with_ratios(model, example, ratios)


def prune_with_ratios(
    model: FeatureModel, example: dict[str, torch.Tensor], ratios: dict[nn.Module, float]
) -> None:
    """Remove from each layer in `ratios` (a prunable layer of `model`) that fraction of its
    output channels, the weakest groups by L2 magnitude, in place; Torch-Pruning keeps
    int(width * (1 - ratio)) of them. Other layers lose only the inputs tied to those.

    Raises:
        MegalithError: Torch-Pruning is not installed (names the `compress` extra).
    """
    tp = import_torch_pruning()
    chosen = {id(m) for m in prunable_layers(model)}
    kept = [m for m in model.modules() if isinstance(m, _WEIGHTED) and id(m) not in chosen]
    model.eval()
    pruner = tp.pruner.MetaPruner(
        model,
        example,
        importance=tp.importance.GroupMagnitudeImportance(p=2),
        pruning_ratio=0.0,
        pruning_ratio_dict=dict(ratios),
        ignored_layers=kept,
        forward_fn=lambda net, inputs: net(inputs),
        output_transform=lambda outputs: sum(y.float().sum() for y in outputs.values()),
    )
    with torch.no_grad():
        pruner.step()


def count_macs(model: nn.Module, example: dict[str, torch.Tensor]) -> int:
    """Multiply-accumulates of one forward pass over `example` divided by its rows: MACs per
    row (torch.utils.flop_counter counts 2 FLOPs per MAC of matmuls, convolutions, attention)."""
    rows = len(next(iter(example.values())))
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(example)
    return int(counter.get_total_flops() // 2 // max(rows, 1))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def import_torch_pruning() -> Any:
    try:
        import torch_pruning
    except ModuleNotFoundError as error:
        problem = missing_extra(error)
        raise problem or error from None
    return torch_pruning
