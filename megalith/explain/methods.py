"""Attribution methods, every one computed by Captum over the attributed space (space.py).

    ig         Integrated Gradients (Sundararajan, Taly & Yan 2017, "Axiomatic Attribution for
               Deep Networks"): the path integral of gradients from the baseline to the row
    saliency   the absolute gradient (Simonyan, Vedaldi & Zisserman 2014, "Deep Inside
               Convolutional Networks"); no baseline
    occlusion  feature ablation (after Zeiler & Fergus 2014, "Visualizing and Understanding
               Convolutional Networks"): each unit (space.py) replaced by its baseline in turn,
               the value is how much the output falls
    shap       Kernel SHAP (Lundberg & Lee 2017, "A Unified Approach to Interpreting Model
               Predictions"): Shapley values of the units, estimated by a weighted linear
               regression over 2 * units + 2048 sampled coalitions (the SHAP library's automatic
               count; fewer for few units, shap_samples), absent units at their baseline; one
               row at a time, so the slowest method

Integrated Gradients is checked for completeness on every row: its attributions must sum to
f(row) - f(baseline). The relative gap |sum - (f(x) - f(b))| / |f(x) - f(b)| falls as the number
of steps grows, so rows whose gap is over 5% are explained again with twice the steps, up to
eight times the starting count; what is left over is reported, not hidden.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from megalith.explain.space import InputSpace

METHODS = {
    "ig": "Integrated Gradients (Sundararajan et al. 2017)",
    "saliency": "saliency, the absolute gradient (Simonyan et al. 2014)",
    "occlusion": "occlusion by feature ablation (after Zeiler & Fergus 2014)",
    "shap": "Kernel SHAP (Lundberg & Lee 2017)",
}
PER_UNIT_METHODS = frozenset({"occlusion", "shap"})
"""Methods that give every number of a unit (a patch, a column) the whole unit's value."""
COMPLETENESS_GOAL = 0.05
"""The largest relative completeness gap accepted before raising the step count."""
STEP_FACTORS = (1, 2, 4, 8)
"""Integrated Gradients tries steps x each factor on the rows still over the goal."""
SMALLEST_CHANGE = 0.01
"""A row whose output moves less than this from the baseline is measured against it instead
(else a gap of 1e-4 on a change of 1e-5 would count as 1,000%)."""


MEMORY_PER_PASS = 512 * 2**20
"""The automatic internal batch size aims at this many bytes of activations kept for the
backward pass (and of Captum's copies of the inputs) per forward pass."""
LARGEST_BATCH = 4096
"""The most (row, step) pairs in one automatic pass: beyond it a CPU gains nothing."""


def automatic_batch_size(
    forward: nn.Module, spaces: list[InputSpace], target: torch.Tensor | None
) -> int:
    """(row, step) pairs per pass, sized from a memory budget: MEMORY_PER_PASS over what one
    pair costs, between 1 and LARGEST_BATCH. A pair's cost is measured, not guessed: the bytes
    the forward pass saves for backward (autograd's saved tensors) on two rows less those on
    one (the weights, saved once per pass, cancel out), plus three copies of the row's
    attributed numbers (Captum's scaled inputs, their gradients, the running sum). A table's
    pair costs a few kilobytes (4,096 pairs per pass); a 224 x 224 image through a ResNet-18
    about 23 MB (22 pairs, 0.5 GB)."""
    one, two = _saved_bytes(forward, spaces, target, 1), _saved_bytes(forward, spaces, target, 2)
    inputs = sum(space.values[0].numel() * space.values.element_size() for space in spaces)
    per_pair = max(two - one, 0) + 3 * inputs
    return max(1, min(LARGEST_BATCH, MEMORY_PER_PASS // max(per_pair, 1)))


def _saved_bytes(
    forward: nn.Module, spaces: list[InputSpace], target: torch.Tensor | None, rows: int
) -> int:
    """Bytes of the tensors autograd saves for backward in a forward pass over `rows` copies of
    the first row (with gradients on the attributed inputs, as Integrated Gradients runs it)."""
    saved: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        saved.setdefault(id(tensor), tensor.numel() * tensor.element_size())
        return tensor

    inputs = [s.values[:1].expand(rows, *s.values.shape[1:]).clone() for s in spaces]
    extras = [
        None if s.extra is None else s.extra[:1].expand(rows, *s.extra.shape[1:]) for s in spaces
    ]
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        forward(*[x.requires_grad_() for x in inputs], *extras)
    return sum(saved.values())


@dataclass
class Attributions:
    """Attributions for B rows: one tensor per input, shaped like its attributed tensor."""

    values: list[torch.Tensor]
    steps: torch.Tensor | None = None
    """ig: (B,) the steps each row took."""
    gap: torch.Tensor | None = None
    """ig: (B,) each row's relative completeness gap; shap: each row's additivity gap, the
    same measure |sum of values - (f(x) - f(b))| / |f(x) - f(b)|."""


def attribute(
    method: str,
    forward: nn.Module,
    spaces: list[InputSpace],
    target: torch.Tensor | None,
    *,
    steps: int = 50,
    internal_batch_size: int = 512,
    raise_steps: bool = True,
    change: torch.Tensor | None = None,
) -> Attributions:
    """Attributions of `forward`'s output (at `target`, (B,) class indices, or None for a
    number output) to each input of `spaces`. `internal_batch_size` bounds how many
    (row, step) or (row, ablation) pairs one forward pass evaluates, and so the memory;
    `raise_steps` off keeps Integrated Gradients at `steps` whatever its completeness gap;
    `change` (B,), f(x) - f(baseline) when the caller has it (else computed here), measures
    completeness (ig) and additivity (shap)."""
    from captum.attr import FeatureAblation, Saliency

    inputs = tuple(space.values for space in spaces)
    extras = tuple(space.extra for space in spaces)
    if method == "ig":
        factors = STEP_FACTORS if raise_steps else (1,)
        change = _change(forward, spaces, target) if change is None else change
        return _integrated_gradients(
            forward, spaces, target, steps, internal_batch_size, factors, change
        )
    if method == "saliency":
        wanted = tuple(x.detach().clone().requires_grad_() for x in inputs)  # as Captum asks
        grads = Saliency(forward).attribute(
            wanted, target=target, abs=True, additional_forward_args=extras
        )
        return Attributions([g.detach() for g in grads])
    if method == "occlusion":
        rows = max(1, len(inputs[0]))
        ablated = FeatureAblation(forward).attribute(
            inputs,
            baselines=tuple(space.baseline for space in spaces),
            target=target,
            additional_forward_args=extras,
            feature_mask=tuple(space.units for space in spaces),
            perturbations_per_eval=max(1, internal_batch_size // rows),
        )
        return Attributions([a.detach() for a in ablated])
    if method == "shap":
        found = _kernel_shap(forward, spaces, target, internal_batch_size)
        change = _change(forward, spaces, target) if change is None else change
        found.gap = relative_gap([_unit_totals(spaces, found.values)], change)
        return found
    raise ValueError(f"unknown method {method}")  # explain_run checked it


def output_at(
    forward: nn.Module,
    inputs: tuple[torch.Tensor, ...],
    extras: tuple[torch.Tensor | None, ...],
    target: torch.Tensor | None,
) -> torch.Tensor:
    """The explained output (B,): the target's column of forward, or a number output itself."""
    with torch.no_grad():
        out = forward(*inputs, *extras)
    return out if target is None else out.gather(1, target.view(-1, 1)).squeeze(1)


def baseline_outputs(
    forward: nn.Module, spaces: list[InputSpace], target: torch.Tensor | None
) -> torch.Tensor:
    """(B,) the explained output at each row's baselines. When every row has the same baseline
    and the model takes nothing else (a black image, a table's typical values), one row is run
    and its output shared: a pass over every row would compute the same numbers B times."""
    extras = tuple(space.extra for space in spaces)
    baselines = tuple(space.baseline for space in spaces)
    rows = len(baselines[0])
    shared = all(extra is None for extra in extras) and all(
        torch.equal(b, b[:1].expand_as(b)) for b in baselines
    )
    if not shared or rows == 1:
        return output_at(forward, baselines, extras, target)
    one = output_at(forward, tuple(b[:1] for b in baselines), extras, None)  # (1, K) or (1,)
    return one.expand(rows) if target is None else one[0][target]


def _change(
    forward: nn.Module, spaces: list[InputSpace], target: torch.Tensor | None
) -> torch.Tensor:
    """(B,) f(x) - f(baseline) of the explained output."""
    extras = tuple(space.extra for space in spaces)
    inputs = tuple(space.values for space in spaces)
    baselines = tuple(space.baseline for space in spaces)
    return output_at(forward, inputs, extras, target) - output_at(
        forward, baselines, extras, target
    )


def relative_gap(
    values: list[torch.Tensor] | tuple[torch.Tensor, ...], change: torch.Tensor
) -> torch.Tensor:
    """(B,) |sum of each row's attributions - change| / |change| (a change under
    SMALLEST_CHANGE measured against SMALLEST_CHANGE): completeness for Integrated Gradients,
    additivity (local accuracy) for Kernel SHAP."""
    rows = len(change)
    total = sum(v.detach().reshape(rows, -1).double().sum(dim=1) for v in values)
    delta = total - change.double()
    return (delta.abs() / change.abs().double().clamp(min=SMALLEST_CHANGE)).float()


def _unit_totals(spaces: list[InputSpace], values: list[torch.Tensor]) -> torch.Tensor:
    """(B,) the sum of each row's unit values, for a method that gives every number of a unit
    the whole unit's value (PER_UNIT_METHODS): each unit counted once."""
    rows = len(values[0])
    total = torch.zeros(rows, dtype=torch.float64)
    for space, value in zip(spaces, values, strict=True):
        ids = space.units.expand_as(value).reshape(rows, -1)[0]
        counts = torch.bincount(ids - int(ids.min())).double()[ids - int(ids.min())]
        total += (value.reshape(rows, -1).double() / counts).sum(dim=1)
    return total


BLAS_LIMIT_FROM = 100
"""Step counts above which numpy's BLAS is held to one thread while Captum runs (below, the
eigenvalue problem is small, and entering and leaving the limit cost about a fifth of a
50-step run on the digits CNN: 2.9 s against 2.4 s, best of 4, same process, under load)."""


def _one_blas_thread() -> AbstractContextManager[Any]:
    """numpy's BLAS limited to one thread. Captum computes the Gauss-Legendre nodes for each
    step count with numpy (an eigenvalue problem): at 400 steps that took 2-5 s with two BLAS
    threads on a busy 2-core machine, and 0.03 s with one. PyTorch's threads are not touched."""
    from threadpoolctl import threadpool_limits  # a dependency of scikit-learn (train extra)

    return threadpool_limits(limits=1, user_api="blas")


def _integrated_gradients(
    forward: nn.Module,
    spaces: list[InputSpace],
    target: torch.Tensor | None,
    steps: int,
    internal_batch_size: int,
    factors: tuple[int, ...],
    change: torch.Tensor,
) -> Attributions:
    from captum.attr import IntegratedGradients

    integrated = IntegratedGradients(forward)
    inputs = tuple(space.values for space in spaces)
    baselines = tuple(space.baseline for space in spaces)
    extras = tuple(space.extra for space in spaces)
    rows = len(change)
    result = [torch.zeros_like(x) for x in inputs]
    used = torch.zeros(rows, dtype=torch.long)
    gap = torch.zeros(rows)
    todo = torch.arange(rows)
    for factor in factors:
        with _one_blas_thread() if steps * factor > BLAS_LIMIT_FROM else nullcontext():
            attributions = integrated.attribute(
                tuple(x[todo] for x in inputs),
                baselines=tuple(b[todo] for b in baselines),
                target=None if target is None else target[todo],
                additional_forward_args=tuple(None if e is None else e[todo] for e in extras),
                n_steps=steps * factor,
                internal_batch_size=internal_batch_size,
            )
        for kept, new in zip(result, attributions, strict=True):
            kept[todo] = new.detach().to(kept.dtype)
        used[todo] = steps * factor
        # Captum's convergence delta, from the change computed once (Captum would run the
        # model on the rows and their baselines again at every step count)
        gap[todo] = relative_gap(attributions, change[todo])
        todo = todo[gap[todo] > COMPLETENESS_GOAL]
        if len(todo) == 0:
            break
    return Attributions(result, used, gap)


def shap_samples(spaces: list[InputSpace]) -> int:
    """Coalitions sampled per row: 2 * units + 2048, as the SHAP library's `nsamples="auto"`,
    or fewer where there are few units: 4 x the 2^units coalitions that exist (a table of 6
    columns has 64; sampling 2,060 of them would cost 8 times as much for little gain)."""
    units = sum(space.valid.shape[1] for space in spaces)
    return min(2 * units + 2048, 4 * 2 ** min(units, 20))


def _kernel_shap(
    forward: nn.Module,
    spaces: list[InputSpace],
    target: torch.Tensor | None,
    internal_batch_size: int,
) -> Attributions:
    import warnings

    from captum.attr import KernelShap

    with warnings.catch_warnings():  # Captum warns that it fits one model per row: we know
        warnings.filterwarnings("ignore", message="You are providing multiple inputs")
        values = KernelShap(forward).attribute(
            tuple(space.values for space in spaces),
            baselines=tuple(space.baseline for space in spaces),
            target=target,
            additional_forward_args=tuple(space.extra for space in spaces),
            feature_mask=tuple(space.units for space in spaces),
            n_samples=shap_samples(spaces),
            perturbations_per_eval=max(1, internal_batch_size),
        )
    return Attributions([v.detach() for v in values])
