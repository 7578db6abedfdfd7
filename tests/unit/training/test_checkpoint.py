"""Checkpoints: complete round trip, atomic layout, last two kept, corrupt ones skipped."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from megalith.training import checkpoint as ckpt


def _trained(seed: int = 0) -> tuple[nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(3):
        loss = model(torch.randn(16, 4)).pow(2).mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return model, optimizer


def _save(root: Path, epoch: int, model: nn.Module, optimizer: torch.optim.Optimizer) -> Path:
    return ckpt.save_checkpoint(
        root, epoch, model.state_dict(), optimizer.state_dict(), {"epoch": epoch, "step": 3 * epoch}
    )


def test_round_trip_restores_model_optimizer_and_rng(tmp_path: Path) -> None:
    model, optimizer = _trained()
    random.seed(1)
    np.random.seed(1)
    torch.manual_seed(1)
    _save(tmp_path, 1, model, optimizer)
    expected = (random.random(), np.random.rand(), torch.rand(1))

    restored = ckpt.load_latest_checkpoint(tmp_path)
    assert restored is not None
    fresh, fresh_optimizer = _trained(seed=5)
    fresh.load_state_dict(restored.model)
    fresh_optimizer.load_state_dict(ckpt.optimizer_state_dict(restored))
    ckpt.restore_rng(restored)
    assert (random.random(), np.random.rand()) == expected[:2]
    assert torch.equal(torch.rand(1), expected[2])

    # One more step from both gives identical weights: the optimizer state came back whole.
    x = torch.randn(16, 4)
    for m, opt in ((model, optimizer), (fresh, fresh_optimizer)):
        m(x).pow(2).mean().backward()
        opt.step()
    for a, b in zip(model.parameters(), fresh.parameters(), strict=True):
        assert torch.equal(a, b)
    assert restored.state["loop"] == {"epoch": 1, "step": 3}


def test_keeps_last_two_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    model, optimizer = _trained()
    for epoch in range(1, 5):
        _save(tmp_path, epoch, model, optimizer)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-000000003", "step-000000004"]
    latest = ckpt.load_latest_checkpoint(tmp_path)
    assert latest is not None and latest.path.name == "step-000000004"


@pytest.mark.parametrize("damage", ["truncate", "delete_state"])
def test_corrupt_checkpoint_is_skipped_for_the_previous(tmp_path: Path, damage: str) -> None:
    model, optimizer = _trained()
    _save(tmp_path, 1, model, optimizer)
    newest = _save(tmp_path, 2, model, optimizer)
    if damage == "truncate":
        weights = newest / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[:-10])
    else:
        (newest / "state.json").unlink()
    with pytest.warns(UserWarning, match="skipping checkpoint"):
        latest = ckpt.load_latest_checkpoint(tmp_path)
    assert latest is not None and latest.path.name == "step-000000001"


def test_no_checkpoint_gives_none(tmp_path: Path) -> None:
    assert ckpt.load_latest_checkpoint(tmp_path / "absent") is None
