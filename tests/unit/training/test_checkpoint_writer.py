"""The checkpoint writer process: what it writes equals the tensors when they were handed over,
a new layout gets a new buffer, and a failed or dead writer is an error, not a lost checkpoint."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from megalith.errors import RunError
from megalith.training.checkpoint_writer import CheckpointWriter


def test_the_writer_writes_the_tensors_of_when_they_were_handed_over(tmp_path: Path) -> None:
    writer = CheckpointWriter()
    try:
        weights = {"w": torch.arange(12.0).reshape(3, 4), "b": torch.tensor(2.5)}
        writer.write(tmp_path, 1, {"model.safetensors": weights}, {"step": 1})
        weights["w"].add_(100.0)  # training goes on while the writer writes
        first = writer.wait()
        other = {"x": torch.ones(5, dtype=torch.bfloat16)}  # another layout: a new buffer
        writer.write(tmp_path, 2, {"model.safetensors": other}, {"step": 2})
        second = writer.wait()
    finally:
        writer.close()
    assert first == tmp_path / "step-000000001" and second == tmp_path / "step-000000002"
    saved = load_file(first / "model.safetensors")
    assert torch.equal(saved["w"], torch.arange(12.0).reshape(3, 4))
    assert saved["b"].shape == () and float(saved["b"]) == 2.5
    assert torch.equal(load_file(second / "model.safetensors")["x"], other["x"])


def test_a_write_that_fails_is_an_error_naming_the_checkpoint(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    writer = CheckpointWriter()
    try:
        writer.write(blocked / "checkpoints", 3, {"m.safetensors": {"w": torch.ones(2)}}, {})
        with pytest.raises(RunError, match=r"cannot write checkpoint .*step-000000003"):
            writer.wait()
    finally:
        writer.close()


def test_a_dead_writer_is_an_error_at_the_next_wait(tmp_path: Path) -> None:
    writer = CheckpointWriter()
    try:
        writer.write(tmp_path, 1, {"m.safetensors": {"w": torch.ones(2)}}, {})
        writer.wait()
        process = writer._process
        assert process is not None
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        writer._pending = True  # as if a write had been asked of it before it died
        with pytest.raises(RunError, match="writer process ended"):
            writer.wait()
    finally:
        writer.stop()
