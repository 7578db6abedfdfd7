"""train.privacy.clipping: auto, resolved from the model's layers on measured evidence.

Per-sample clipping (Opacus's GradSampleModule) writes every row's gradient of every weight,
(rows x weights) floats a batch, reads it back for the norms and again for the clipped sum.
Ghost clipping (Opacus's GradSampleModuleFastGradientClipping, Li et al. 2022, Bu et al. 2023)
computes a row's gradient norm of an `nn.Linear` or `nn.Embedding` (the layers Opacus 1.6 has
norm samplers for; megalith.training.ghost_clipping adds its own embedding norm) from the
layer's inputs and output gradients, and pays a second backward pass instead. For any other
layer (Conv2d, GroupNorm, LayerNorm, DPLSTM's RNNLinear) it still computes each row's gradient,
so a model made mostly of those pays both. `benchmarks/privacy_clipping.py` measured (one
thread, same process, docs/privacy.md): ghost faster for MLPs of 1,604 and 72,196 weights
(1.8x against 8.4x a non-private epoch for 256 x 256 at batch 256) and for a text bag, about
even for a digits CNN whose convolutions hold two thirds of its weights.
"""

from __future__ import annotations

from torch import nn

GHOST_SHARE = 0.5
"""auto takes ghost clipping when at least this share of the trainable weights sits in layers
ghost clipping computes norms for (measured: MLPs and text bags near 1.0, ghost faster; the
digits CNN 0.33, per-sample slightly faster)."""


def ghost_weight_share(model: nn.Module) -> float:
    """The share (0..1) of `model`'s trainable weights in layers ghost clipping takes without
    per-row gradients: exactly `nn.Linear` and `nn.Embedding`, as Opacus dispatches on the
    exact type (DPLSTM's RNNLinear, a subclass, gets per-row gradients). 0.0 without weights."""
    spared = total = 0
    for module in model.modules():
        weights = sum(p.numel() for p in module.parameters(recurse=False) if p.requires_grad)
        total += weights
        if type(module) in (nn.Linear, nn.Embedding):
            spared += weights
    return spared / total if total else 0.0


def ghost_clipping_for(clipping: str, model: nn.Module) -> bool:
    """train.privacy.clipping resolved for `model` (already made private-safe): ghost or
    per_sample as set; auto is ghost clipping when at least GHOST_SHARE of the trainable
    weights are in Linear and Embedding layers (MLPs, text bags, embedding tables), per-sample
    otherwise (CNNs, ResNets, recurrent encoders with small vocabularies). The choice depends on
    the model alone, so every DDP process makes the same one."""
    if clipping != "auto":
        return clipping == "ghost"
    return ghost_weight_share(model) >= GHOST_SHARE
