"""The batch loss of a private run under per-sample clipping: safe on an empty Poisson batch,
and with class weights a per-row mean, so each row's clipped gradient depends on it alone."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch


def private_loss(loss: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """`loss`, except that an empty Poisson batch gives a zero that still reaches every
    output (a mean over no rows would be NaN), and that with class weights each row's loss is
    scaled by its class's weight and averaged over the rows (as ghost clipping's), so that a
    row's clipped gradient depends on that row alone."""

    def guarded(
        features: Sequence[Any],
        outputs: dict[str, torch.Tensor],
        targets: dict[str, torch.Tensor],
        *args: Any,
    ) -> torch.Tensor:
        if next(iter(targets.values())).shape[0] == 0:
            return sum((value.sum() * 0.0 for value in outputs.values()), torch.tensor(0.0))
        weights = args[1] if len(args) > 1 else None
        if weights:  # a weighted mean over the batch (cross_entropy's) divides by the rows'
            # summed weights: a row's gradient would depend on the other rows' classes
            from megalith.training.ghost_clipping import row_losses

            return row_losses(features, outputs, targets, weights).mean()
        return loss(features, outputs, targets, *args)

    return guarded
