"""Ghost clipping for DP-SGD: each row's gradient norm without each row's gradient.

Per-sample clipping (Opacus's GradSampleModule) materialises every row's gradient: a
(B, vocab, dim) tensor for an embedding table, which makes a text model's private epoch many
times slower than its ordinary one. Ghost clipping (Li et al., "Large Language Models Can Be
Strong Differentially Private Learners", ICLR 2022; Bu et al., "Differentially Private
Optimization on Large Model at Small Cost", ICML 2023) computes each row's gradient *norm* of a
linear or embedding layer from its activations and output gradients alone, then takes a second
backward pass over the loss reweighted by each row's clipping factor: the summed clipped
gradient, without any per-row copy. Opacus implements it (GradSampleModuleFastGradientClipping,
DPOptimizerFastGradientClipping, DPTensorFastGradientClipping); this module gives it the
per-row losses it needs and fits it to the training loop's virtual steps.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from megalith.data.features import CategoryOutput, OutputFeature


def row_losses(
    features: Sequence[OutputFeature],
    outputs: Mapping[str, torch.Tensor],
    targets: Mapping[str, torch.Tensor],
    class_weights: Mapping[str, torch.Tensor] | None = None,
) -> torch.Tensor:
    """float32 (B,) each row's training loss: the weighted sum over outputs of cross-entropy
    (categories), binary cross-entropy (binary) or squared error averaged over the row's
    values (numbers). Their mean over rows is `total_loss` without class weights; with class
    weights each row's term is scaled by its class's weight (`total_loss`'s category mean
    divides by the summed weights instead). Text outputs are not trained privately."""
    class_weights = class_weights or {}
    total: torch.Tensor | None = None
    for feature in features:
        output, target = outputs[feature.name].float(), targets[feature.name]
        weights = class_weights.get(feature.name)
        if feature.type == "category":
            assert isinstance(feature, CategoryOutput)
            smoothing = feature.label_smoothing
            row = F.cross_entropy(
                output, target, weight=weights, label_smoothing=smoothing, reduction="none"
            )
        elif feature.type == "binary":
            scale = None if weights is None else weights[target.long()]
            row = F.binary_cross_entropy_with_logits(output, target, weight=scale, reduction="none")
        else:
            row = F.mse_loss(output, target, reduction="none")
            row = row.flatten(1).mean(dim=1) if row.dim() > 1 else row
        term = feature.weight * row
        total = term if total is None else total + term
    assert total is not None, "a model has at least one output"
    return total


def forward_without_hooks_when_empty(module: Any) -> Callable[..., Any]:
    """`module`'s forward, except that an empty batch (a Poisson batch that drew no rows)
    runs with Opacus's hooks off: ghost clipping's norm samplers cannot take zero rows, and
    GhostLoss never backpropagates such a batch, so it must leave no activations behind."""

    def forward(inputs: Mapping[str, torch.Tensor]) -> Any:
        if next(iter(inputs.values())).shape[0] > 0:
            return module(inputs)
        module.disable_hooks()
        try:
            return module(inputs)
        finally:
            module.enable_hooks()

    return forward


def embedding_norms(
    layer: nn.Embedding, activations: list[torch.Tensor], backprops: torch.Tensor
) -> dict[torch.Tensor, torch.Tensor]:
    """Each row's gradient norm of an embedding table, float32 (B,), from its token ids
    `activations[0]` (B, ...) and the output gradients `backprops` (B, ..., D).

    A row's gradient is, for each distinct id, the sum of the output gradients where that id
    appears; its norm is the root of the summed squares of those sums. Positions holding
    `padding_idx` are left out, as PyTorch's embedding gradient leaves them out (Opacus's own
    norm sampler counts them, overstating the norms of padded rows). Ids are keyed as
    row * vocab + id and grouped by one 1-D `unique`, several times faster than Opacus's
    unique over (row, id) pairs, which dominated a private text model's step.
    """
    ids = activations[0]
    rows = ids.shape[0]
    ids = ids.reshape(rows, -1)
    grads = backprops.reshape(rows, ids.shape[1], -1)
    keep = ids != layer.padding_idx if layer.padding_idx is not None else ids >= 0
    owner = torch.arange(rows, device=ids.device).unsqueeze(1).expand_as(ids)
    keys = (owner * layer.num_embeddings + ids)[keep]
    distinct, group = torch.unique(keys, return_inverse=True)
    summed = grads.new_zeros(len(distinct), grads.shape[-1]).index_add_(0, group, grads[keep])
    squares = grads.new_zeros(rows).index_add_(
        0, distinct // layer.num_embeddings, summed.pow(2).sum(dim=1)
    )
    return {layer.weight: squares.sqrt()}


def ghost_module(model: nn.Module, max_grad_norm: float) -> nn.Module:
    """`model` under Opacus's ghost clipping, with `embedding_norms` for embedding tables."""
    from opacus.grad_sample import GradSampleModuleFastGradientClipping

    class GhostClippingModule(GradSampleModuleFastGradientClipping):
        NORM_SAMPLERS = {
            **GradSampleModuleFastGradientClipping.NORM_SAMPLERS,
            nn.Embedding: embedding_norms,
        }

    return GhostClippingModule(
        model, loss_reduction="mean", max_grad_norm=max_grad_norm, use_ghost_clipping=True
    )


class GhostLoss:
    """One physical batch's loss under ghost clipping, as the training loop uses a loss tensor:
    `detach()` gives the batch mean, `backward()` runs Opacus's two backward passes and then
    stores this batch's summed clipped gradient in the optimizer's accumulator, so that the
    virtual steps of one optimizer step add up before the noise is added once."""

    def __init__(self, rows: torch.Tensor, module: Any, optimizer: Any) -> None:
        self.rows, self.module, self.optimizer = rows, module, optimizer

    def detach(self) -> torch.Tensor:
        if self.rows.numel() == 0:
            return self.rows.new_zeros(())
        return self.rows.detach().mean()

    def backward(self) -> None:
        from opacus.utils.fast_gradient_clipping_utils import DPTensorFastGradientClipping

        if self.rows.numel() == 0:  # an empty Poisson batch adds nothing to the sum
            for parameter in self.optimizer.params:  # (its forward ran without hooks)
                parameter.grad = torch.zeros_like(parameter)
        else:
            DPTensorFastGradientClipping(self.module, self.optimizer, self.rows, "mean").backward()
        # add this batch's clipped sum to p.summed_grad and take no step; the loop's own
        # optimizer.step() at the end of the virtual steps adds nothing more (grads zeroed)
        # and then noises, scales and applies the whole sum
        self.optimizer.signal_skip_step(do_skip=True)
        self.optimizer.step()
        self.optimizer.original_optimizer.zero_grad(set_to_none=False)
