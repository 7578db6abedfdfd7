"""DP-SGD across DDP processes (`--devices N` with train.privacy), through Opacus.

Opacus's distributed DP-SGD (`PrivacyEngine.make_private` on a DDP model): every process
clips its own rows' gradients and sums them, only rank 0 adds the Gaussian noise, and the
noisy sum is all-reduced and divided by the expected rows, so one step is the single-process
step over the union of the processes' rows (`DistributedDPOptimizer`, and
`DistributedDPOptimizerFastGradientClipping` for ghost clipping). The model is wrapped in
`DifferentiallyPrivateDistributedDataParallel`, which only broadcasts rank 0's weights: the
gradients are reduced by the optimizer after clipping, not by DDP's hooks before it.

Sampling: as Opacus's `DistributedUniformWithReplacementSampler`, each process owns 1/N of the
rows and draws each of them with the global rate q = batch_size / train rows, so each row is in
a step with probability q, independently of the others: the union is the single-process Poisson
batch, and the accountant's (q, steps) are the single-process run's. A process's draws are a
function of (seed, epoch, rank, step), which keeps a resumed run exact.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def rank_rows(rows: int, rank: int, world_size: int) -> torch.Tensor:
    """int64 (about rows / world_size,) the train rows this process draws from: every
    world_size-th row from `rank` on (all of them in a single process)."""
    return torch.arange(rank, rows, world_size)


def rank_seed(seed: int, epoch: int, rank: int) -> int:
    """The seed of this process's Poisson draws in `epoch` (rank 0's is a single process's)."""
    return seed * 100_003 + epoch + 7_919 + rank * 1_000_003


def step_seed(seed: int, epoch: int, rank: int, step: int) -> int:
    """The global generator's seed at the start of optimizer step `step` of `epoch` on `rank`
    (several processes only: see PrivateTraining.batches)."""
    return (rank_seed(seed, epoch, rank) * 1_000_033 + step) % 2**63


def optimizer_class(ghost: bool, world_size: int) -> Any:
    """Opacus's DP optimizer for the clipping mode and the number of processes."""
    from opacus.optimizers import (
        DistributedDPOptimizer,
        DistributedDPOptimizerFastGradientClipping,
        DPOptimizer,
        DPOptimizerFastGradientClipping,
    )

    if world_size > 1:
        return DistributedDPOptimizerFastGradientClipping if ghost else DistributedDPOptimizer
    return DPOptimizerFastGradientClipping if ghost else DPOptimizer


def private_ddp(model: nn.Module) -> nn.Module:
    """`model` in Opacus's DDP wrapper: rank 0's weights broadcast to every process (a
    collective); no gradient hooks, as the DP optimizer reduces the clipped, noised sums."""
    from opacus.distributed import DifferentiallyPrivateDistributedDataParallel

    return DifferentiallyPrivateDistributedDataParallel(model)
