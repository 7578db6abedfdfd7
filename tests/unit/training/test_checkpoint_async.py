"""Asynchronous checkpoints: a snapshot written in the background, the same files as a
foreground write, and a kill during the write leaves the previous checkpoint the newest."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from megalith.config import validate_config
from megalith.data.specs import InputSpec, OutputSpec
from megalith.data.tensors import TensorTable
from megalith.models import build_model
from megalith.training import checkpoint as ckpt
from megalith.training.loop import TrainJob, train_loop

REPO = Path(__file__).resolve().parents[3]


def _state() -> tuple[nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = nn.Linear(64, 32)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model(torch.randn(8, 64)).pow(2).mean().backward()
    optimizer.step()
    return model, optimizer


def test_a_background_write_holds_the_state_of_when_it_was_asked(tmp_path: Path) -> None:
    model, optimizer = _state()
    loop = {"position": {"step": 1}}
    ckpt.save_checkpoint(tmp_path / "a", 1, model.state_dict(), optimizer.state_dict(), loop)
    ckpt.save_checkpoint(
        tmp_path / "b", 1, model.state_dict(), optimizer.state_dict(), loop, background=True
    )
    with torch.no_grad():  # training goes on while the background write runs
        model.weight.add_(1.0)
    loop["position"]["step"] = 99
    ckpt.wait_until_durable()
    a, b = ckpt.load_latest_checkpoint(tmp_path / "a"), ckpt.load_latest_checkpoint(tmp_path / "b")
    assert a is not None and b is not None
    assert a.model.keys() == b.model.keys() and a.optimizer.keys() == b.optimizer.keys()
    assert all(torch.equal(a.model[k], b.model[k]) for k in a.model)
    assert all(torch.equal(a.optimizer[k], b.optimizer[k]) for k in a.optimizer)
    assert b.state["loop"] == {"position": {"step": 1}}


_WRITER = """
import sys, torch
from pathlib import Path
from megalith.training import checkpoint as ckpt
root = Path(sys.argv[1])
ckpt.save_checkpoint(root, 1, {"w": torch.zeros(4)}, {"state": {}, "param_groups": []}, {})
ckpt.wait_until_durable()
big = {"w": torch.ones(64, 1024, 1024)}  # 256 MB: the write takes a while
ckpt.save_checkpoint(root, 2, big, {"state": {}, "param_groups": []}, {}, background=True)
print("writing", flush=True)
ckpt.wait_until_durable()
"""


def test_a_kill_during_a_background_write_keeps_the_previous_checkpoint(tmp_path: Path) -> None:
    script = tmp_path / "writer.py"
    script.write_text(textwrap.dedent(_WRITER))
    root = tmp_path / "checkpoints"
    process = subprocess.Popen(
        [sys.executable, str(script), str(root)], stdout=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 120
        while not any(p.name.startswith(".tmp-step-000000002") for p in _entries(root)):
            assert process.poll() is None, "the write ended before the kill"
            assert time.monotonic() < deadline
            time.sleep(0.001)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    latest = ckpt.load_latest_checkpoint(root)
    assert latest is not None and latest.state["step"] == 1
    assert torch.equal(latest.model["w"], torch.zeros(4))


def _entries(root: Path) -> list[Path]:
    return list(root.iterdir()) if root.is_dir() else []


def test_the_checkpoint_cost_benchmark_runs_in_tiny_mode() -> None:
    result = subprocess.run(
        [sys.executable, "benchmarks/checkpoint_cost.py", "--tiny"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    row = json.loads(result.stdout)
    assert set(row["seconds"]) == {"none", "sync", "async", "async_thread", "async_dcp"}
    assert {"async_thread_over_sync_overhead", "async_dcp_over_sync_overhead"} <= row.keys()
    assert all(value > 0 for value in row["seconds"].values())


def _job(folder: Path, background: bool) -> TrainJob:
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(size=(256, 4)).astype(np.float32))
    table = TensorTable(
        {f"x{i}": x[:, i] for i in range(4)}, {"y": (x.sum(1) > 0).long()}, np.arange(256)
    )
    config = validate_config(
        {
            "data": {"source": "unused.csv"},
            "inputs": [{"name": f"x{i}", "type": "number"} for i in range(4)],
            "outputs": [{"name": "y", "type": "category"}],
            "model": {"arch": "mlp", "hidden": [16], "dropout": 0.0},
            "train": {"epochs": 2, "batch_size": 32, "checkpoint_every": 3}
            | {"checkpoint_async": background},
        }
    )
    torch.manual_seed(0)
    inputs = [InputSpec(f"x{i}", "number") for i in range(4)]
    outputs = [OutputSpec("y", "category", num_classes=2)]
    model = build_model(config.model, inputs, outputs)
    return TrainJob(model, config.outputs, outputs, table, None, config.train, 0, folder)


def test_training_with_background_checkpoints_writes_the_same_checkpoints(tmp_path: Path) -> None:
    jobs = [_job(tmp_path / name, name == "async") for name in ("sync", "async")]
    for job in jobs:
        train_loop(job)
    names = [sorted(p.name for p in job.checkpoints.iterdir()) for job in jobs]
    assert names[0] == names[1] == ["step-000000015", "step-000000016"]
    a, b = (ckpt.load_latest_checkpoint(job.checkpoints) for job in jobs)
    assert a is not None and b is not None
    assert all(torch.equal(a.model[k], b.model[k]) for k in a.model)
    assert a.state["loop"]["position"] == b.state["loop"]["position"]
