"""Pieces of the loop: the optimizer step with clipping, batching, early stopping."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from megalith.batching import count_batches, epoch_order, shuffled_batches
from megalith.config import load_config, validate_config
from megalith.data.specs import InputSpec, OutputSpec
from megalith.data.tensors import TensorTable
from megalith.errors import ConfigError
from megalith.models import build_model
from megalith.training import checkpoint as ckpt
from megalith.training.early_stop import EarlyStopConfig, EarlyStopping
from megalith.training.loop import TrainJob, _unscale_and_clip, train_loop


def test_clipping_bounds_the_update() -> None:
    model = nn.Linear(10, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    (model(torch.full((4, 10), 100.0)).sum() * 1000).backward()
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    norm = _unscale_and_clip(model, optimizer, scaler, clip_grad_norm=0.5)
    assert norm is not None and norm > 1000  # the norm before clipping is reported
    optimizer.step()
    after = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert torch.linalg.vector_norm(after - before) <= 0.5 + 1e-5


DIGITS = InputSpec("image", "image", shape=(1, 8, 8), mean=(0.3,), std=(0.35,))
LABEL = OutputSpec("label", "category", num_classes=10)


def _table(rows: int) -> TensorTable:
    return TensorTable(
        inputs={"x": torch.arange(rows, dtype=torch.float32)},
        targets={"y": torch.arange(rows)},
        rows=np.arange(rows),
    )


def test_batches_cover_every_row_once_and_match_the_count() -> None:
    for rows, batch_size in [(10, 4), (9, 4), (4, 4), (1, 4), (65, 64)]:
        order = epoch_order(rows, seed=0, epoch=0)
        batches = list(shuffled_batches(_table(rows), batch_size, order, torch.device("cpu")))
        assert len(batches) == count_batches(rows, batch_size)
        seen = torch.cat([b.inputs["x"] for b in batches]).long()
        assert len(set(seen.tolist())) == len(seen)
        assert all(len(b) > 1 for b in batches) or rows == 1
        assert torch.equal(seen, torch.cat([b.targets["y"] for b in batches]))  # rows stay aligned


def test_epoch_order_depends_only_on_seed_and_epoch() -> None:
    assert torch.equal(epoch_order(100, 3, 7), epoch_order(100, 3, 7))
    assert not torch.equal(epoch_order(100, 3, 7), epoch_order(100, 3, 8))
    assert sorted(epoch_order(100, 3, 7).tolist()) == list(range(100))


def test_early_stopping_waits_for_patience_and_knows_direction() -> None:
    accuracy = EarlyStopping(EarlyStopConfig(metric="val/accuracy", patience=2))
    improvements = [
        accuracy.update({"val/accuracy": v}, e) for e, v in enumerate([0.5, 0.7, 0.6, 0.65])
    ]
    assert improvements == [True, True, False, False]
    assert accuracy.should_stop and accuracy.best_epoch == 1

    loss = EarlyStopping(EarlyStopConfig(metric="val/loss", patience=3))
    assert [loss.update({"val/loss": v}, e) for e, v in enumerate([1.0, 0.9, 0.95])] == [
        True,
        True,
        False,
    ]
    assert not loss.should_stop
    restored = EarlyStopping(EarlyStopConfig(metric="val/loss", patience=3))
    restored.load_state(loss.state())
    assert restored.state() == loss.state()


def test_sharded_runs_checkpoint_by_steps_not_minutes() -> None:
    base = {
        "data": {"source": "builtin:iris"},
        "inputs": [{"name": "sepal_length", "type": "number"}],
        "outputs": [{"name": "species", "type": "category"}],
        "train": {"strategy": "fsdp", "checkpoint_every": "10m"},
    }
    with pytest.raises(ConfigError, match="with strategy fsdp, give a number of steps"):
        load_config(base)
    base["train"]["checkpoint_every"] = 500
    cfg, _ = load_config(base)
    assert cfg.train.strategy == "fsdp"


def _cnn_job(epochs: int, checkpoints: Path) -> TrainJob:
    """A small CNN on random 8x8 images, trained on the CPU with fused AdamW."""
    config = validate_config(
        {
            "data": {"source": "builtin:digits"},
            "inputs": [{"name": "image", "type": "image"}],
            "outputs": [{"name": "label", "type": "category"}],
            "model": {"arch": "cnn", "channels": [4, 8], "hidden": [16]},
            "train": {"epochs": epochs, "batch_size": 16, "device": "cpu"},
        }
    )
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (64, 1, 8, 8), generator=gen, dtype=torch.uint8)
    labels = torch.randint(0, 10, (64,), generator=gen)
    table = TensorTable({"image": images}, {"label": labels}, np.arange(64))
    torch.manual_seed(0)
    model = build_model(config.model, [DIGITS], [LABEL])
    return TrainJob(model, config.outputs, [], table, None, config.train, 0, checkpoints)


def test_a_resumed_cnn_on_cpu_matches_the_uninterrupted_run(tmp_path: Path) -> None:
    straight = _cnn_job(3, tmp_path / "straight")
    train_loop(straight)
    conv = straight.model.get_submodule("encoders.0.backbone.0")
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)  # the faster kernels
    train_loop(_cnn_job(2, tmp_path / "resumed"))
    resumed = _cnn_job(3, tmp_path / "resumed")
    train_loop(resumed, resume=ckpt.load_latest_checkpoint(tmp_path / "resumed"))
    # the checkpoint holds the moments contiguous; fused AdamW needs them in the weights' layout
    for (name, a), b in zip(
        straight.model.state_dict().items(), resumed.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
