"""`train.batch_size: auto`: the largest batch whose training step fits in the GPU's memory.

The search doubles the batch from 16 while a full step fits — forward under the run's precision,
loss, backward — with the optimizer's state for every trained weight (two fp32 moments) held in
memory alongside, as it will be during training. It keeps the largest power of two that fit, at
most `auto_limit`: a batch that leaves an epoch at least `MIN_STEPS_PER_EPOCH` optimizer steps
(on an H200, a 1M-parameter GPT fitted its whole 10,117-row train split in one batch and learned
nothing in 4 steps). Only a GPU has a hard limit to find: on CPU, `auto` is 64.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from megalith.data.features import OutputFeature
from megalith.data.tensors import TensorTable
from megalith.device import autocast
from megalith.training.losses import total_loss

CPU_BATCH_SIZE = 64
"""What `auto` means where there is no device memory to fill."""
FIRST_TRY = 16
MIN_STEPS_PER_EPOCH = 32
"""`auto` never picks a batch so large that an epoch has fewer optimizer steps than this."""


def auto_limit(rows: int, processes: int = 1) -> int:
    """The largest batch per process `auto` may pick for a train split of `rows` rows: the
    largest power of two leaving every epoch `MIN_STEPS_PER_EPOCH` steps, but never below
    `FIRST_TRY` (or the split itself, when it is smaller than that)."""
    per_process = max(1, rows // processes)
    steps_cap = per_process // MIN_STEPS_PER_EPOCH
    if steps_cap < FIRST_TRY:
        return min(FIRST_TRY, per_process)
    return 1 << (steps_cap.bit_length() - 1)


def largest_fitting(fits: Callable[[int], bool], limit: int, first: int = FIRST_TRY) -> int:
    """The largest power of two from `first` up to `limit` for which `fits` holds (doubling
    until it does not); `limit` itself when even `first` exceeds it and it fits.

    Raises:
        RuntimeError: not even the smallest batch fits.
    """
    size = min(first, limit)
    if not fits(size):
        raise RuntimeError(f"a training step with a batch of {size} rows does not fit in memory")
    while size < limit:
        bigger = min(size * 2, limit)
        if not fits(bigger):
            break
        size = bigger
    return size


def find_batch_size(
    model: nn.Module,
    table: TensorTable,
    outputs: Sequence[OutputFeature],
    device: torch.device,
    dtype: torch.dtype | None,
    processes: int = 1,
    loss_fn: Callable[..., torch.Tensor] = total_loss,
) -> int:
    """The global batch size for `batch_size: auto` (per process times `processes`);
    `loss_fn` is the job's loss (a speech recognizer's CTC)."""
    if device.type != "cuda":
        return CPU_BATCH_SIZE
    limit = auto_limit(len(table), processes)
    model = model.to(device)
    trained = [p for p in model.parameters() if p.requires_grad]
    # Adam's two moments per trained weight, held while probing as they will be while training
    moments = [torch.empty(2 * p.numel(), device=device, dtype=torch.float32) for p in trained]

    def fits(size: int) -> bool:
        index = torch.arange(size) % len(table)  # a small table is repeated to fill the batch
        batch = table.select(index).to(device)
        try:
            with autocast(device, dtype):
                loss = loss_fn(outputs, model(batch.inputs), batch.targets)
            loss.backward()
            torch.cuda.synchronize(device)
            return True
        except torch.OutOfMemoryError:
            return False
        finally:
            del batch
            model.zero_grad(set_to_none=True)
            torch.cuda.empty_cache()

    model.train()
    try:
        per_process = largest_fitting(fits, limit)
    finally:
        del moments
        torch.cuda.empty_cache()
    return per_process * processes
