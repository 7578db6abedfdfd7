"""What a checkpoint holds of the training loop, and putting it back: where training is
(epoch, batch, step, the epoch's running loss), the LR schedule, the loss scaler, early
stopping and the callbacks' state, with the model, optimizer and random generators."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from megalith.training import checkpoint as ckpt
from megalith.training.callbacks import Callback
from megalith.training.distributed import Distributed
from megalith.training.early_stop import EarlyStopping
from megalith.training.sharded_resume import read_own_pieces


@dataclass
class Position:
    """Where training is: what a checkpoint needs to continue exactly, mid-epoch included."""

    epoch: int = 0
    """Epochs completed."""
    batch: int = 0
    """Batches of the current epoch already consumed."""
    step: int = 0
    """Optimizer steps taken."""
    loss_sum: float = 0.0
    """Sum of (batch loss * rows) so far this epoch, for the epoch's mean train loss."""
    rows: int = 0
    """Rows trained on so far this epoch."""


def loop_state(
    at: Position,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    stopper: EarlyStopping | None,
    callbacks: Sequence[Callback],
) -> dict[str, Any]:
    """The loop's part of a checkpoint: position, schedule, scaler, early stopping, callbacks."""
    return {
        "position": dataclasses.asdict(at),
        "scheduler": {k: v for k, v in scheduler.state_dict().items() if k != "lr_lambdas"},
        "scaler": scaler.state_dict(),
        "early_stop": stopper.state() if stopper is not None else None,
        "callbacks": {type(cb).__name__: cb.state_dict() for cb in callbacks},
    }


def restore_loop(
    checkpoint: ckpt.Checkpoint,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    stopper: EarlyStopping | None,
    callbacks: Sequence[Callback],
    ddp: Distributed,
) -> Position:
    """Load every piece of state; returns where training stopped."""
    loop = checkpoint.state["loop"]
    if checkpoint.pieces is not None:  # FSDP: each process reads the pieces it holds
        read_own_pieces(checkpoint, model, optimizer)
    else:
        ddp.load_full_weights(model, checkpoint.model)
        ddp.load_optimizer_state(optimizer, ckpt.optimizer_state_dict(checkpoint))
    _state_in_param_layout(optimizer)
    lambdas = [None] * len(optimizer.param_groups)
    scheduler.load_state_dict({**loop["scheduler"], "lr_lambdas": lambdas})
    if loop["scaler"]:
        scaler.load_state_dict(loop["scaler"])
    if stopper is not None and loop["early_stop"] is not None:
        stopper.load_state(loop["early_stop"])
    for cb in callbacks:
        cb.load_state_dict(loop["callbacks"].get(type(cb).__name__, {}))
    ckpt.restore_rng(checkpoint)
    at = Position(**loop["position"])  # rank 0 carries the epoch's loss so far, summed later
    return at if ddp.is_main else dataclasses.replace(at, loss_sum=0.0, rows=0)


def _state_in_param_layout(optimizer: torch.optim.Optimizer) -> None:
    """Loaded moments in their parameter's memory layout (checkpoints hold them contiguous):
    fused AdamW walks a channels-last weight and its moments as flat memory, in step."""
    for group in optimizer.param_groups:
        for param in group["params"]:
            state = optimizer.state.get(param, {})
            for name, value in list(state.items()):
                same_shape = torch.is_tensor(value) and value.shape == param.shape
                if same_shape and value.stride() != param.stride():
                    state[name] = torch.empty_like(param, dtype=value.dtype).copy_(value)
