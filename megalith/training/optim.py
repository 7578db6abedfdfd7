"""Optimizers (SGD with momentum, Adam, AdamW) and LR schedules (constant, step, cosine)."""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import Field
from torch import nn

from megalith.configbase import ConfigModel


class OptimizerConfig(ConfigModel):
    """The optimizer and its hyper-parameters."""

    name: Literal["sgd", "adam", "adamw"] = "adamw"
    """sgd (with momentum), adam, or adamw (decoupled weight decay)."""
    lr: float = Field(1e-3, gt=0)
    """Peak learning rate."""
    weight_decay: float = Field(0.01, ge=0)
    """Weight decay, applied to weight matrices and kernels only (not biases or norms)."""
    momentum: float = Field(0.9, ge=0, lt=1)
    """sgd only: momentum."""
    nesterov: bool = False
    """sgd only: Nesterov momentum."""
    betas: tuple[float, float] = (0.9, 0.999)
    """adam / adamw: coefficients of the running averages."""


class ScheduleConfig(ConfigModel):
    """How the learning rate changes over training, step by step."""

    name: Literal["constant", "step", "cosine"] = "constant"
    """constant, step (times gamma every step_epochs), or cosine decay to min_lr_ratio * lr."""
    warmup_steps: int = Field(0, ge=0)
    """Linear warm-up from 0 to lr over this many optimizer steps."""
    step_epochs: int = Field(10, gt=0)
    """step only: epochs between two decays."""
    gamma: float = Field(0.1, gt=0, le=1)
    """step only: factor applied at each decay."""
    min_lr_ratio: float = Field(0.0, ge=0, le=1)
    """cosine only: final learning rate as a fraction of lr."""


def build_optimizer(
    model: nn.Module, config: OptimizerConfig, fused: bool
) -> torch.optim.Optimizer:
    """Weight decay only on tensors with 2+ dims: decaying biases and norm scales hurts accuracy."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": config.weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    groups = [g for g in groups if g["params"]]
    if config.name == "sgd":
        return torch.optim.SGD(
            groups, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov
        )
    optimizer_class = torch.optim.AdamW if config.name == "adamw" else torch.optim.Adam
    # fused kernels where torch has them (CUDA and CPU: a CPU step of a small MLP takes a third
    # of the time of the default loop over tensors); elsewhere the foreach path
    extra = {"fused": True} if fused else {"foreach": True}
    return optimizer_class(groups, lr=config.lr, betas=config.betas, **extra)


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    config: ScheduleConfig,
    steps_per_epoch: int,
    total_steps: int,
) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step multiplier of the learning rate; stepped once per optimizer step."""
    total = max(1, total_steps)
    warmup = config.warmup_steps

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if config.name == "step":
            return config.gamma ** (step // (config.step_epochs * steps_per_epoch))
        if config.name == "cosine":
            progress = min(1.0, (step - warmup) / max(1, total - warmup))
            cosine = 0.5 * (1 + math.cos(math.pi * progress))
            return config.min_lr_ratio + (1 - config.min_lr_ratio) * cosine
        return 1.0

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
