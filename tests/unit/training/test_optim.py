"""Optimizers and learning-rate schedules."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from megalith.training.optim import (
    OptimizerConfig,
    ScheduleConfig,
    build_optimizer,
    build_scheduler,
)


def _lrs(schedule: ScheduleConfig, steps_per_epoch: int = 10, epochs: int = 3) -> list[float]:
    model = nn.Linear(2, 2)
    optimizer = build_optimizer(model, OptimizerConfig(name="sgd", lr=1.0), fused=False)
    scheduler = build_scheduler(optimizer, schedule, steps_per_epoch, steps_per_epoch * epochs)
    lrs = []
    for _ in range(steps_per_epoch * epochs):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


def test_constant_with_warmup() -> None:
    lrs = _lrs(ScheduleConfig(name="constant", warmup_steps=4))
    assert lrs[:5] == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0])
    assert lrs[-1] == 1.0


def test_step_decays_every_n_epochs() -> None:
    lrs = _lrs(ScheduleConfig(name="step", step_epochs=1, gamma=0.5))
    assert lrs[0] == 1.0 and lrs[10] == 0.5 and lrs[20] == 0.25


def test_cosine_decays_to_min_ratio() -> None:
    lrs = _lrs(ScheduleConfig(name="cosine", min_lr_ratio=0.1))
    assert lrs[0] == pytest.approx(1.0)
    assert lrs[-1] == pytest.approx(0.1, abs=0.01)
    assert all(a >= b for a, b in itertools.pairwise(lrs))


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
def test_optimizers_decay_only_matrices(name: str) -> None:
    model = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4))
    optimizer = build_optimizer(model, OptimizerConfig(name=name, weight_decay=0.1), fused=False)
    decays = {
        g["weight_decay"]: sum(p.numel() for p in g["params"]) for g in optimizer.param_groups
    }
    assert decays == {0.1: 12, 0.0: 4 + 4 + 4}


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
def test_optimizers_lower_a_quadratic(name: str) -> None:
    torch.manual_seed(0)
    model = nn.Linear(5, 1)
    x, y = torch.randn(64, 5), torch.randn(64, 1)
    lr = 0.05 if name == "sgd" else 0.02
    optimizer = build_optimizer(model, OptimizerConfig(name=name, lr=lr), fused=False)
    first = None
    for _ in range(100):
        loss = (model(x) - y).pow(2).mean()
        first = first if first is not None else loss.item()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    assert loss.item() < 0.8 * first
