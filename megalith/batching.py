"""Batches from an in-memory TensorTable: indexing whole tensors, no per-sample Python work."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import nn

from megalith.bucketing import Bucketing
from megalith.bucketing import epoch_order as epoch_order  # re-exported: its old home
from megalith.data.tensors import TensorTable
from megalith.device import autocast
from megalith.models.cnn import use_channels_last


def shuffled_batches(
    table: TensorTable,
    batch_size: int,
    order: torch.Tensor,
    device: torch.device,
    start_batch: int = 0,
    local_part: Callable[[torch.Tensor], torch.Tensor] | None = None,
    bucketing: Bucketing | None = None,
) -> Iterator[TensorTable]:
    """Training batches in `order` from batch `start_batch` on (to resume mid-epoch).

    The last short batch is kept unless it has a single row: that would break batch norm in
    training mode and adds noise for nothing. With several processes, `local_part` picks this
    process's rows of each global batch; with `bucketing`, each batch is cut to its longest
    row (megalith.bucketing).
    """
    if device.type == "cuda" and table.device.type == "cuda":
        order = order.pin_memory()  # each batch's index then goes up without a host wait
    for start in range(start_batch * batch_size, len(order), batch_size):
        index = order[start : start + batch_size]
        if len(index) == 1 and len(order) > 1:
            break
        if local_part is not None:
            index = local_part(index)
        batch = table.select(index)
        if bucketing is not None:
            batch = bucketing.cut(batch, index)
        yield batch if batch.device == device else batch.to(device, non_blocking=True)


def count_batches(rows: int, batch_size: int) -> int:
    """Matches shuffled_batches, which drops a trailing single-row batch."""
    full, rest = divmod(rows, batch_size)
    return full + (1 if rest > 1 or (rest == 1 and full == 0) else 0)


def forward_batches(
    model: nn.Module,
    table: TensorTable,
    batch_size: int,
    device: torch.device,
    dtype: torch.dtype | None,
) -> Iterator[tuple[TensorTable, dict[str, torch.Tensor]]]:
    """(batch on `device`, the model's outputs) for every batch in order, in eval mode and
    without autograd; convolution weights go channels-last on CPU and CUDA (`use_channels_last`:
    the faster kernels, at batch 1 too)."""
    model.eval()
    use_channels_last(model, device)
    with torch.inference_mode():
        for start in range(0, len(table), batch_size):
            index = torch.arange(start, min(start + batch_size, len(table)))
            batch = table.select(index)
            if batch.device != device:
                batch = batch.to(device, non_blocking=True)
            with autocast(device, dtype):
                outputs = model(batch.inputs)
            yield batch, outputs


def forward_in_batches(
    model: nn.Module,
    table: TensorTable,
    batch_size: int,
    device: torch.device,
    dtype: torch.dtype | None,
) -> dict[str, torch.Tensor]:
    """The model's outputs for every row, concatenated, in fp32 on the CPU."""
    pieces: dict[str, list[torch.Tensor]] = {}
    for _, outputs in forward_batches(model, table, batch_size, device, dtype):
        for name, value in outputs.items():
            pieces.setdefault(name, []).append(value.float().cpu())
    return {name: torch.cat(values) for name, values in pieces.items()}
