"""Trust figures for a set of explanations: does removing what the explanation ranks first change
the prediction more than removing features at random?

The deletion check (after Samek et al. 2017, "Evaluating the Visualization of What a Deep Neural
Network Has Learned", and Petsiuk et al. 2018, RISE): each row's units (space.py) are replaced by
their baselines in order, most attributed first, in steps of a tenth of the row's units; at each
step the explained output's fall f(x) - f(x with those units removed) is recorded. The area under
that curve (the mean fall over the 11 steps, 0% to 100% removed) is compared with the same curve
for random orders. A faithful explanation's area is the larger one.
"""

from __future__ import annotations

from typing import Any

import torch

from megalith.explain.methods import output_at
from megalith.explain.space import AttributedModel, InputSpace

FRACTIONS = torch.linspace(0, 1, 11)
RANDOM_ORDERS = 3


def deletion_curves(
    forward: AttributedModel,
    spaces: list[InputSpace],
    target: torch.Tensor | None,
    scores: torch.Tensor,
    valid: torch.Tensor,
    *,
    internal_batch_size: int = 512,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean fall of the output (B,) when removing units in the order of `scores` (B, U),
    highest first, and the same averaged over RANDOM_ORDERS random orders. Several removal
    steps share a forward pass, up to `internal_batch_size` rows in all."""
    generator = torch.Generator().manual_seed(seed)
    orders = [scores.double()]
    orders += [torch.rand(scores.shape, generator=generator) for _ in range(RANDOM_ORDERS)]
    areas = [_area(forward, spaces, target, order, valid, internal_batch_size) for order in orders]
    return areas[0], torch.stack(areas[1:]).mean(dim=0)


def deletion_summary(attributed: torch.Tensor, random: torch.Tensor) -> dict[str, Any]:
    """The deletion figures over all explained rows, for summary.json."""
    mean_attributed, mean_random = float(attributed.mean()), float(random.mean())
    passed = mean_attributed > mean_random
    return {
        "area_attributed": mean_attributed,
        "area_random": mean_random,
        "rows_better_than_random": float((attributed > random).double().mean()),
        "passed": passed,
        "note": (
            "removing the most attributed features first lowers the explained output more "
            "than removing random ones"
            if passed
            else "removing the most attributed features first did NOT lower the explained "
            "output more than random removal: treat these attributions with suspicion"
        ),
    }


def _area(
    forward: AttributedModel,
    spaces: list[InputSpace],
    target: torch.Tensor | None,
    scores: torch.Tensor,
    valid: torch.Tensor,
    internal_batch_size: int,
) -> torch.Tensor:
    rows = scores.shape[0]
    ranked = scores.masked_fill(~valid, float("-inf"))  # padding is never removed
    rank = ranked.argsort(dim=1, descending=True).argsort(dim=1)  # (B, U) place in the order
    counts = valid.sum(dim=1)  # (B,)
    extras = tuple(space.extra for space in spaces)
    start = output_at(forward, tuple(space.values for space in spaces), extras, target)
    per_pass = max(1, internal_batch_size // max(rows, 1))
    falls = []
    for first in range(0, len(FRACTIONS), per_pass):
        fractions = FRACTIONS[first : first + per_pass]  # removal steps sharing one pass
        removed = [rank < torch.round(f * counts).long().view(-1, 1) for f in fractions]
        changed = tuple(torch.cat([_remove(s, r, rows) for r in removed]) for s in spaces)
        repeat = len(fractions)
        outputs = output_at(
            forward,
            changed,
            tuple(None if e is None else e.repeat(repeat, *[1] * (e.dim() - 1)) for e in extras),
            None if target is None else target.repeat(repeat),
        )
        falls.append(start.unsqueeze(0) - outputs.view(repeat, rows))  # (steps, B)
    return torch.cat(falls).mean(dim=0).double()  # (B,)


def _remove(space: InputSpace, removed: torch.Tensor, rows: int) -> torch.Tensor:
    """The space's values with the removed units (B, U) put back to their baseline."""
    ids = space.units.expand_as(space.values).reshape(rows, -1)
    gone = removed.gather(1, ids).view_as(space.values)
    return torch.where(gone, space.baseline, space.values)
