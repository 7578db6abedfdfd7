"""Sharded checkpoints (DCP, safetensors): what one process writes reads back as an unsharded
checkpoint does, in the foreground and the background, nothing in them is unpickled, a damaged
one is skipped, and a kill during a background write leaves the previous checkpoint the newest."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from megalith.paths import file_sha256 as sha
from megalith.training import checkpoint as ckpt
from megalith.training import checkpoint_files as files
from megalith.training.sharded_checkpoint import save_sharded_checkpoint


def _state() -> tuple[nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model(torch.randn(8, 16)).pow(2).mean().backward()
    optimizer.step()
    return model, optimizer


@pytest.mark.parametrize("background", [False, True])
def test_a_sharded_checkpoint_reads_back_as_an_unsharded_one(
    tmp_path: Path, background: bool
) -> None:
    model, optimizer = _state()
    loop = {"position": {"step": 1}}
    ckpt.save_checkpoint(tmp_path / "whole", 1, model.state_dict(), optimizer.state_dict(), loop)
    save_sharded_checkpoint(tmp_path / "sharded", 1, model, optimizer, loop, background)
    with torch.no_grad():  # training goes on while a background write runs
        model[0].weight.add_(1.0)
    loop["position"]["step"] = 99
    ckpt.wait_until_durable()
    a = ckpt.load_latest_checkpoint(tmp_path / "whole")
    b = ckpt.load_latest_checkpoint(tmp_path / "sharded")
    assert a is not None and b is not None
    assert a.model.keys() == b.model.keys() and a.optimizer.keys() == b.optimizer.keys()
    assert all(torch.equal(a.model[k], b.model[k]) for k in a.model)
    assert all(torch.equal(a.optimizer[k], b.optimizer[k]) for k in a.optimizer)
    assert b.state["loop"] == {"position": {"step": 1}}
    assert _same_optimizer(a, b)
    files = sorted(str(p.relative_to(b.path)) for p in b.path.rglob("*") if p.is_file())
    assert files == [
        "rng.safetensors",
        "shards/shard-00001-model-00001-of-00001.safetensors",
        "state.json",
    ]  # no pickled .metadata: the layout is in the safetensors headers
    assert json.loads((b.path / "state.json").read_text())["format"] == "dcp-safetensors"


def _same_optimizer(a: ckpt.Checkpoint, b: ckpt.Checkpoint) -> bool:
    x, y = ckpt.optimizer_state_dict(a), ckpt.optimizer_state_dict(b)
    same_tensors = all(
        torch.equal(x["state"][p][k], y["state"][p][k])
        for p in x["state"]
        for k in x["state"][p]
        if torch.is_tensor(x["state"][p][k])
    )
    return same_tensors and x["param_groups"] == y["param_groups"]


def test_a_sharded_checkpoint_missing_a_shard_is_skipped_for_the_one_before(
    tmp_path: Path,
) -> None:
    model, optimizer = _state()
    save_sharded_checkpoint(tmp_path, 1, model, optimizer, {"at": 1})
    save_sharded_checkpoint(tmp_path, 2, model, optimizer, {"at": 2})
    ckpt.wait_until_durable()
    for shard in (tmp_path / "step-000000002" / "shards").iterdir():
        shard.unlink()
    with pytest.warns(UserWarning, match="skipping checkpoint .*step-000000002"):
        latest = ckpt.load_latest_checkpoint(tmp_path)
    assert latest is not None and latest.state["loop"] == {"at": 1}


@pytest.mark.parametrize("background", [False, True])
def test_shards_are_hashed_as_written_and_a_corrupted_one_is_refused(
    tmp_path: Path, background: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashed: list[str] = []
    monkeypatch.setattr(files, "file_sha256", lambda path: hashed.append(path.name) or sha(path))
    model, optimizer = _state()
    save_sharded_checkpoint(tmp_path, 1, model, optimizer, {"at": 1})
    save_sharded_checkpoint(tmp_path, 2, model, optimizer, {"at": 2}, background)
    ckpt.wait_until_durable()
    assert hashed == ["rng.safetensors"] * 2  # the shard itself is never read back
    newest = tmp_path / "step-000000002"
    digests = json.loads((newest / "state.json").read_text())["files"]
    shard = newest / "shards" / "shard-00001-model-00001-of-00001.safetensors"
    assert digests["shards/" + shard.name] == sha(shard)
    data = bytearray(shard.read_bytes())
    data[-1] ^= 0xFF  # one bit of a value: the header still reads
    shard.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match="shard-00001.* does not match its checksum"):
        latest = ckpt.load_latest_checkpoint(tmp_path)
    assert latest is not None and latest.state["loop"] == {"at": 1}


_WRITER = """
import sys, torch
from pathlib import Path
from torch import nn
from megalith.paths import file_sha256 as sha
from megalith.training import checkpoint as ckpt
from megalith.training import checkpoint_files as files
from megalith.training.sharded_checkpoint import save_sharded_checkpoint
root = Path(sys.argv[1])
model = nn.Linear(4, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
save_sharded_checkpoint(root, 1, model, optimizer, {"at": 1})
ckpt.wait_until_durable()
big = nn.Linear(1024, 64 * 1024)  # 256 MB: the write takes a while
save_sharded_checkpoint(root, 2, big, optimizer, {"at": 2}, background=True)
print("writing", flush=True)
ckpt.wait_until_durable()
"""


@pytest.mark.slow
def test_a_kill_during_a_background_sharded_write_keeps_the_previous_checkpoint(
    tmp_path: Path,
) -> None:
    script = tmp_path / "writer.py"
    script.write_text(textwrap.dedent(_WRITER))
    root = tmp_path / "checkpoints"
    process = subprocess.Popen([sys.executable, str(script), str(root)], text=True)
    try:
        deadline = time.monotonic() + 120
        shards = root / ".tmp-step-000000002-shards" / "shards"
        while not (shards.is_dir() and any(shards.iterdir())):  # the write has begun
            assert process.poll() is None, "the write ended before the kill"
            assert time.monotonic() < deadline
            time.sleep(0.001)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    latest = ckpt.load_latest_checkpoint(root)
    assert latest is not None and latest.state["loop"] == {"at": 1}
    assert [p.name for p in root.glob("step-*")] == ["step-000000001"]
