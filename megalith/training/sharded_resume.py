"""An FSDP run resumed with each process reading only the pieces of the checkpoint it holds.

A checkpoint of a model bigger than one process's memory cannot be read whole by every process
and then cut into shards. Here the sharded model's own state dict (DTensors: each process's
shard of every weight) and destinations shaped like it for the optimizer's moments are handed
to torch.distributed.checkpoint's load, which plans for each process the pieces of the stored
tensors that overlap its shards; DCP's `HuggingFaceStorageReader` reads each such piece from its
safetensors file by byte range (`get_slice`), so no process reads a file whole. It works for a
sharded checkpoint written by any number of processes and for an unsharded one (model and
optimizer files written whole by a single process or by DDP).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from megalith.training.checkpoint import Checkpoint
from megalith.training.dcp_shards import read_pieces, tensor_layout


def read_own_pieces(
    checkpoint: Checkpoint, model: nn.Module, optimizer: torch.optim.Optimizer
) -> None:
    """Load the weights and optimizer state of `checkpoint` (opened with `pieces=True`) into
    a model sharded by FSDP and its optimizer; a collective: every process calls it at once.

    Raises:
        ValueError: the checkpoint was not opened for reading by pieces.
        RuntimeError: from DCP, when a stored tensor does not fit its destination.
    """
    files = checkpoint.pieces
    if files is None:
        raise ValueError(f"{checkpoint.path} was read whole; open it with pieces=True")
    weights = {files.model_prefix + name: t for name, t in model.state_dict().items()}
    moments = _moment_destinations(optimizer, tensor_layout(files.folder))
    read_pieces(files.folder, {**weights, **moments})
    prefix = len(files.model_prefix)
    model.load_state_dict({name[prefix:]: value for name, value in weights.items()})
    per_param: dict[int, dict[str, Any]] = {}
    for key, value in moments.items():
        _, param, name = key.split(".", 2)
        per_param.setdefault(int(param), {})[name] = value
    layout = checkpoint.state["optimizer"]
    for param, values in layout["scalars"].items():
        per_param.setdefault(int(param), {}).update(values)
    optimizer.load_state_dict({"state": per_param, "param_groups": layout["param_groups"]})


def _moment_destinations(
    optimizer: torch.optim.Optimizer, layout: dict[str, Any]
) -> dict[str, torch.Tensor]:
    """An empty tensor for each stored `state.N.NAME`: sharded like parameter N when it has
    the parameter's shape (AdamW's moments), whole otherwise (its `step`)."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    destinations = {}
    for key, meta in layout.items():
        if not key.startswith("state."):
            continue
        param = params[int(key.split(".", 2)[1])]
        dtype = meta.properties.dtype
        if tuple(meta.size) == tuple(param.shape):  # a DTensor like the parameter's shard
            destinations[key] = torch.empty_like(param.detach(), dtype=dtype)
        else:
            destinations[key] = torch.empty(meta.size, dtype=dtype)
    return destinations
