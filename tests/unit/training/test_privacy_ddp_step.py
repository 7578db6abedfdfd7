"""One DP-SGD step on two Gloo processes equals the single-process step over the union of
their Poisson draws (noise set to zero), with per-sample and with ghost clipping."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tests.multiprocess import run_ranks

pytestmark = pytest.mark.slow

_RANK = """
import copy, json, sys
import numpy as np
import torch, torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from megalith.data.tensors import TensorTable
from megalith.training.distributed import Distributed
from megalith.training.ghost_clipping import GhostLoss
from megalith.training.privacy import PrivacyConfig, PrivateTraining

torch.set_num_threads(1)
clipping = sys.argv[1]
ddp = Distributed.from_env()
dist.init_process_group("gloo")


class Bag(nn.Module):  # an embedding table (ghost clipping's case) and a linear head
    def __init__(self) -> None:
        super().__init__()
        self.embedding, self.head = nn.Embedding(20, 4), nn.Linear(4, 3)

    def forward(self, inputs):
        return self.head(self.embedding(inputs["ids"]).mean(dim=1))


generator = torch.Generator().manual_seed(0)
ids, labels = torch.randint(0, 20, (64, 5), generator=generator), torch.arange(64) % 3
table = TensorTable(inputs={"ids": ids}, targets={"y": labels}, rows=np.arange(64))


def step(model, private, batch):
    forward, optimizer = private.attach(model, torch.optim.SGD(model.parameters(), lr=1.0), 10)
    optimizer.noise_multiplier = 0.0  # the noise is rank 0's alone: compare the clipped sums
    outputs = forward(batch.inputs)
    rows = F.cross_entropy(outputs, batch.targets["y"], reduction="none")
    loss = GhostLoss(rows, private.grad_sampler, optimizer) if private.ghost else rows.mean()
    loss.backward()
    optimizer.step()
    private.detach()


def private(world_size, rank):
    config = PrivacyConfig(max_grad_norm=0.05, clipping=clipping, accountant="rdp")
    return PrivateTraining(config, 64, 16, 1, seed=3, rank=rank, world_size=world_size)


torch.manual_seed(0)
start = Bag()
model = ddp.wrap(copy.deepcopy(start), torch.device("cpu"), private=True)
shared = private(2, ddp.rank)
batch = next(shared.batches(table, 0, 0, torch.device("cpu")))
step(model, shared, batch)
drawn = [None, None]
dist.all_gather_object(drawn, batch.rows.tolist())  # the union of the two draws
union = table.select(torch.tensor(drawn[0] + drawn[1]))
reference = copy.deepcopy(start)
single = private(1, 0)
step(reference, single, union)
after = dict(model.module.named_parameters())
gap = max((after[name] - value).abs().max().item() for name, value in reference.named_parameters())
moved = max((after[name] - value).abs().max().item() for name, value in start.named_parameters())
sizes = [len(d) for d in drawn]
print(json.dumps({"gap": gap, "moved": moved, "rows": sizes, "ghost": shared.ghost}))
dist.destroy_process_group()
"""


@pytest.mark.parametrize("clipping", ["per_sample", "ghost"])
def test_a_two_process_step_is_the_single_process_step_over_both_draws(
    tmp_path: Path, clipping: str
) -> None:
    script = tmp_path / "rank.py"
    script.write_text(textwrap.dedent(_RANK))
    results = [json.loads(log.splitlines()[-1]) for log in run_ranks(script, 2, clipping)]
    for result in results:
        assert result["ghost"] == (clipping == "ghost")
        assert min(result["rows"]) > 0 and result["moved"] > 1e-3  # a real step was taken
        assert result["gap"] < 1e-6
