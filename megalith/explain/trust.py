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
from torch import nn

from megalith.explain.methods import COMPLETENESS_GOAL, output_at
from megalith.explain.space import InputSpace

FRACTIONS = torch.linspace(0, 1, 11)
RANDOM_ORDERS = 3
DELETION_ROWS = 64
"""Rows the deletion check measures (the first ones explained): it runs the model 37 times
per row (9 removal steps in 4 orders, and all removed), about a third of what Integrated
Gradients costs a row, so checking every row of a large set would cost more than it tells."""


def deletion_curves(
    forward: nn.Module,
    spaces: list[InputSpace],
    target: torch.Tensor | None,
    scores: torch.Tensor,
    valid: torch.Tensor,
    *,
    internal_batch_size: int = 512,
    seed: int = 0,
    ends: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean fall of the output (B,) when removing units in the order of `scores` (B, U),
    highest first, and the same averaged over RANDOM_ORDERS random orders. Several removal
    steps share a forward pass, up to `internal_batch_size` rows in all. `ends`: the explained
    output (B,) of the rows and of their baselines, when the caller has them (else computed
    here): nothing removed gives a fall of 0 and everything removed the same fall in every
    order, so only the steps between run the model."""
    if ends is None:
        extras = tuple(space.extra for space in spaces)
        ends = (
            output_at(forward, tuple(space.values for space in spaces), extras, target),
            output_at(forward, tuple(space.baseline for space in spaces), extras, target),
        )
    start, end = ends
    if scores.shape[1] == 0 or len(scores) == 0:
        zeros = torch.zeros(len(scores), dtype=torch.float64)
        return zeros, zeros
    generator = torch.Generator().manual_seed(seed)
    orders = [scores.double()]
    orders += [torch.rand(scores.shape, generator=generator) for _ in range(RANDOM_ORDERS)]
    inner = [
        _inner_falls(forward, spaces, target, order, valid, internal_batch_size, start)
        for order in orders
    ]
    # padding is never removed, so "everything" is every valid unit: its output is the
    # baseline's wherever padding sits at its baseline (text, sequences); else a pass of its own
    full = _remove_all(forward, spaces, target, valid, start, end)
    areas = [(falls.sum(dim=0) + full) / len(FRACTIONS) for falls in inner]
    return areas[0], torch.stack(areas[1:]).mean(dim=0)


def deletion_summary(attributed: torch.Tensor, random: torch.Tensor) -> dict[str, Any]:
    """The deletion figures over the rows checked (the first DELETION_ROWS), for summary.json."""
    mean_attributed, mean_random = float(attributed.mean()), float(random.mean())
    passed = mean_attributed > mean_random
    return {
        "rows": len(attributed),
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


def _inner_falls(
    forward: nn.Module,
    spaces: list[InputSpace],
    target: torch.Tensor | None,
    scores: torch.Tensor,
    valid: torch.Tensor,
    internal_batch_size: int,
    start: torch.Tensor,
) -> torch.Tensor:
    """(steps, B) float64: the output's fall at each removal step strictly between none and
    all of a row's units, removed in the order of `scores`."""
    rows = scores.shape[0]
    ranked = scores.masked_fill(~valid, float("-inf"))  # padding is never removed
    rank = ranked.argsort(dim=1, descending=True).argsort(dim=1)  # (B, U) place in the order
    counts = valid.sum(dim=1)  # (B,)
    extras = tuple(space.extra for space in spaces)
    inner = FRACTIONS[1:-1]
    per_pass = max(1, internal_batch_size // max(rows, 1))
    falls = []
    for first in range(0, len(inner), per_pass):
        fractions = inner[first : first + per_pass]  # removal steps sharing one pass
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
    return torch.cat(falls).double()


def _remove_all(
    forward: nn.Module,
    spaces: list[InputSpace],
    target: torch.Tensor | None,
    valid: torch.Tensor,
    start: torch.Tensor,
    end: torch.Tensor,
) -> torch.Tensor:
    """(B,) float64: the fall with every valid unit removed (the same in every order)."""
    rows = len(start)
    removed = [_remove(space, valid, rows) for space in spaces]
    if all(torch.equal(r, space.baseline) for r, space in zip(removed, spaces, strict=True)):
        return (start - end).double()
    extras = tuple(space.extra for space in spaces)
    return (start - output_at(forward, tuple(removed), extras, target)).double()


def _remove(space: InputSpace, removed: torch.Tensor, rows: int) -> torch.Tensor:
    """The space's values with the removed units (B, U) put back to their baseline."""
    ids = space.units.expand_as(space.values).reshape(rows, -1)
    gone = removed.gather(1, ids).view_as(space.values)
    return torch.where(gone, space.baseline, space.values)


def completeness_summary(
    gaps: torch.Tensor, used: torch.Tensor, unit: str = "row"
) -> dict[str, Any]:
    """The completeness figures of Integrated Gradients over rows: gaps (B,), steps used (B,).
    `unit` names what each gap is of in the note (a seq2seq run's: each written token)."""
    worst = float(gaps.max())
    passed = worst <= COMPLETENESS_GOAL
    steps = {str(int(s)): int((used == s).sum()) for s in used.unique()}
    return {
        "goal": COMPLETENESS_GOAL,
        "gap_max": worst,
        "gap_median": float(gaps.median()),
        "rows_within_goal": float((gaps <= COMPLETENESS_GOAL).double().mean()),
        "rows_by_steps": steps,
        "passed": passed,
        "note": (
            f"every {unit}'s attributions sum to f(x) - f(baseline) within 5%"
            if passed
            else f"some {unit}s miss completeness after {int(used.max())} steps (worst gap "
            f"{worst:.1%}); their attributions are approximate"
        ),
    }


def additivity_summary(gaps: torch.Tensor) -> dict[str, Any]:
    """Kernel SHAP's additivity over rows, gaps (B,): how far each row's Shapley values miss
    summing to f(x) - f(baseline) (Lundberg & Lee's local accuracy), relative to that change."""
    worst = float(gaps.max())
    passed = worst <= COMPLETENESS_GOAL
    return {
        "goal": COMPLETENESS_GOAL,
        "gap_max": worst,
        "gap_median": float(gaps.median()),
        "rows_within_goal": float((gaps <= COMPLETENESS_GOAL).double().mean()),
        "passed": passed,
        "note": (
            "every row's Shapley values sum to f(x) - f(baseline) within 5%"
            if passed
            else f"some rows' Shapley values miss f(x) - f(baseline) (worst gap {worst:.1%}): "
            "the sampled coalitions were too few for them; their values are approximate"
        ),
    }
