"""The model-randomisation sanity check (Adebayo et al. 2018, "Sanity Checks for Saliency Maps"):
an explanation of what the model learned must change when the learned weights are thrown away.

The same rows are explained again, with the same method and target, by the same architecture
with every layer re-initialised (each module's own `reset_parameters`, from a fixed seed) after
the attributed space (space.py: a category's or a token's embedding stays the trained one, so
both explanations attribute the same numbers). Per row, the Spearman rank correlation of the
two |attribution| vectors over every attributed number that holds data is measured (numbers,
not columns: summed over a category's embedding, a column's value grows with its width in
either model, and a table of six columns has few ranks to compare).

Attributions that mostly reflect the input itself (an edge detector, a pixel's brightness) keep
their ranking under randomisation and correlate highly; ones that reflect the weights do not.
The check passes when the mean correlation is below RANK_CORRELATION_LIMIT. As Adebayo et al.
found, gradient x input methods (Integrated Gradients among them) keep part of the input's
ranking, so their figure sits higher than saliency's on the same model.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from torch import nn

from megalith.data.specs import InputSpec, OutputSpec
from megalith.explain.methods import attribute
from megalith.explain.pretrained import forward_for
from megalith.explain.space import InputSpace

RANK_CORRELATION_LIMIT = 0.5
"""Mean Spearman correlation between trained and randomised |attributions| accepted as
'changed': Adebayo et al. read correlations near 1 as a failure and near 0 as a pass; half-way
is the line drawn here."""
RANDOMISATION_ROWS = 32
"""Rows explained again with the randomised model (the first ones): the check costs one more
attribution of this many rows."""


def randomised_copy(model: nn.Module, seed: int = 0) -> nn.Module:
    """A copy of `model` with every parameter re-initialised as a new model's would be (and
    batch-norm statistics reset; a Hugging Face model by its `_init_weights`); `model` itself
    and the global random state are untouched."""
    fresh = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in fresh.modules():
            reset = getattr(module, "reset_parameters", None)
            if callable(reset):
                reset()
            # a Hugging Face model's own initialisation: its layers need not have
            # reset_parameters (GPT-2's Conv1D has none)
            initialise = getattr(module, "_init_weights", None)
            if callable(initialise) and hasattr(module, "config"):
                module.apply(initialise)
    return fresh.eval()


def rank_correlations(trained: torch.Tensor, randomised: torch.Tensor, valid: torch.Tensor) -> Any:
    """(B,) Spearman correlation of |trained| and |randomised| (each (B, N)) over each row's
    valid numbers; NaN for a row with fewer than 3 of them or a constant ranking."""
    from scipy.stats import spearmanr

    found = np.full(len(trained), np.nan)
    for i in range(len(trained)):
        kept = valid[i].numpy()
        a, b = trained[i].abs().numpy()[kept], randomised[i].abs().numpy()[kept]
        if len(a) >= 3 and np.ptp(a) > 0 and np.ptp(b) > 0:
            found[i] = float(spearmanr(a, b).statistic)
    return found


def randomisation_summary(correlations: np.ndarray) -> dict[str, Any]:
    """The model-randomisation figures for summary.json's trust section."""
    measured = correlations[~np.isnan(correlations)]
    if len(measured) == 0:
        return {
            "rows": 0,
            "passed": True,
            "note": "not measured: no row has 3 or more features with varying attributions",
        }
    mean = float(measured.mean())
    passed = mean < RANK_CORRELATION_LIMIT
    return {
        "rank_correlation_mean": mean,
        "rank_correlation_median": float(np.median(measured)),
        "limit": RANK_CORRELATION_LIMIT,
        "rows": len(measured),
        "passed": passed,
        "note": (
            "the attributions change when the model's weights are re-initialised: they depend "
            "on what the model learned"
            if passed
            else "the attributions barely change when the model's weights are re-initialised: "
            "they reflect the input more than the model; treat them as untrustworthy"
        ),
    }


def randomised_attributions(
    model: nn.Module,
    specs: list[InputSpec],
    output: OutputSpec,
    method: str,
    spaces: list[InputSpace],
    target: torch.Tensor | None,
    *,
    steps: int,
    internal_batch_size: int,
) -> torch.Tensor:
    """The attributions (B, N) of the rows in `spaces` (N: every attributed number of a row)
    explained by `method` at `target` with `model`'s weights re-initialised after the
    attributed space (the rows' embeddings stay as they are, so both sets of attributions
    are over the same numbers)."""
    forward = forward_for(randomised_copy(model), specs, output)
    # at the starting step count: raising it would buy a completeness nobody reads here
    found = attribute(
        method,
        forward,
        spaces,
        target,
        steps=steps,
        internal_batch_size=internal_batch_size,
        raise_steps=False,
    )
    return flattened(found.values)


def flattened(values: list[torch.Tensor]) -> torch.Tensor:
    """One row's attributions over all its inputs as one vector: (B, N) float64."""
    return torch.cat([v.detach().reshape(len(v), -1).double() for v in values], dim=1)


def valid_elements(spaces: list[InputSpace], method: str) -> torch.Tensor:
    """(B, N) bool: the attributed numbers that hold data (not padding), as `flattened`. For a
    method measured from the baseline (ig, occlusion), numbers at their baseline are left out
    too: those methods give them 0 whatever the weights, a match that says nothing."""
    parts = []
    for space in spaces:
        rows = len(space.values)
        ids = space.units.expand_as(space.values).reshape(rows, -1)
        valid = space.valid.gather(1, ids - int(space.units.min()))
        if method != "saliency":
            moved = (space.values != space.baseline).reshape(rows, -1)
            valid = valid & moved
        parts.append(valid)
    return torch.cat(parts, dim=1)
