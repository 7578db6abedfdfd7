"""An FSDP process resuming reads only its own pieces of a checkpoint (DCP's load into the
sharded state dict): what each of 3 processes then holds, gathered, equals the checkpoint read
whole, for shards written by 2 processes (cut otherwise). Their digests in state.json were taken
by the processes that wrote them: rank 0 reads no shard back, and the read-whole check verifies
them. Reading an unsharded checkpoint by pieces (1 -> 2) is tested through the CLI in
tests/integration/test_dcp_sharded.py."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tests.multiprocess import run_ranks

pytestmark = pytest.mark.slow

_RANK = """
import dataclasses, json, sys
from pathlib import Path
import torch, torch.distributed as dist
from torch import nn
from megalith.training import checkpoint as ckpt
from megalith.training.distributed import Distributed
from megalith.training.sharded_checkpoint import save_sharded_checkpoint
from megalith.training.sharded_resume import read_own_pieces

root, mode = Path(sys.argv[1]), sys.argv[2]
ddp = Distributed.from_env()
dist.init_process_group("gloo")
ddp = dataclasses.replace(ddp, sharded=ddp.enabled)
torch.manual_seed(0)
model = ddp.wrap(nn.Sequential(nn.Linear(6, 10), nn.ReLU(), nn.Linear(10, 3)), torch.device("cpu"))
optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
if mode != "read":  # a step, so that the weights and moments are not what the seed made
    torch.manual_seed(1 + ddp.rank)
    model(torch.randn(4, 6)).pow(2).mean().backward()
    optimizer.step()
if mode == "shards":  # rank 0 hashes no shard: each process hashed its own while writing
    import megalith.training.checkpoint_files as files
    hashed, real = [], files.file_sha256
    files.file_sha256 = lambda path: hashed.append(str(path)) or real(path)
    save_sharded_checkpoint(root, 1, model, optimizer, {"at": 1})
    ckpt.wait_until_durable()
    print(json.dumps({"hashed": hashed}))
elif mode == "whole":
    weights, moments = ddp.full_weights(model), ddp.full_optimizer_state(optimizer)
    if ddp.is_main:
        ckpt.save_checkpoint(root, 1, weights, moments, {"at": 1})
else:
    pieces = ckpt.load_latest_checkpoint(root, pieces=True)
    assert all(t.is_meta for t in pieces.model.values())  # nothing read yet
    read_own_pieces(pieces, model, optimizer)
    whole = ckpt.load_latest_checkpoint(root)
    weights, moments = ddp.full_weights(model), ddp.full_optimizer_state(optimizer)
    expected = ckpt.optimizer_state_dict(whole)
    same = all(torch.equal(weights[k], whole.model[k]) for k in whole.model)
    same &= weights.keys() == whole.model.keys()
    same &= moments["param_groups"] == expected["param_groups"]
    for param, values in expected["state"].items():
        for name, value in values.items():
            same &= bool(torch.equal(torch.as_tensor(moments["state"][param][name]), value))
    print(json.dumps({"same": bool(same), "shard": model[0].weight.to_local().shape[0]}))
ckpt.wait_until_durable()
dist.destroy_process_group()
"""


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "rank.py"
    path.write_text(textwrap.dedent(_RANK))
    return path


def test_three_processes_read_their_pieces_of_two_processes_shards(
    script: Path, tmp_path: Path
) -> None:
    root = tmp_path / "checkpoints"
    written = run_ranks(script, 2, str(root), "shards")  # rows 0-4 and 5-9 of the first weight
    hashed = json.loads(written[0].strip().splitlines()[-1])["hashed"]
    assert hashed and not [path for path in hashed if "/shards/" in path]
    outputs = run_ranks(script, 3, str(root), "read")  # rows 0-3, 4-7 and 8-9: pieces of both
    results = [json.loads(out.strip().splitlines()[-1]) for out in outputs]
    assert [result["shard"] for result in results] == [4, 4, 2]
    assert all(result["same"] for result in results), results
