"""The TensorBoard callback writes the scalars the loop hands it."""

from __future__ import annotations

from pathlib import Path

import pytest

from megalith.training.tensorboard import TensorBoardLog, build_loggers


def test_scalars_reach_the_event_files(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    log = TensorBoardLog(tmp_path / "tensorboard")
    log.on_train_start(total_steps=20, epochs=2, start_epoch=0)
    log.on_step_end(step=5, epoch=0, samples=32, loss=1.5)
    log.on_step_end(step=6, epoch=0, samples=32, loss=None)  # not a logging step
    log.on_epoch_end(0, {"epoch": 1, "step": 10, "train/loss": 1.2, "val/accuracy": 0.8})
    log.on_train_end(stopped_early=False)
    assert log.state_dict() == {"step": 6}

    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert set(events.Tags()["scalars"]) == {"train/loss_step", "train/loss", "val/accuracy"}
    [loss] = events.Scalars("train/loss_step")
    assert (loss.step, loss.value) == (5, 1.5)
    [accuracy] = events.Scalars("val/accuracy")
    assert accuracy.step == 10 and accuracy.value == pytest.approx(0.8)


def test_build_loggers() -> None:
    assert build_loggers([], Path("run")) == []
