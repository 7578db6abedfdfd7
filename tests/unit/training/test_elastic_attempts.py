"""Which run a torchrun restart resumes, and that an epoch's rows are each seen once when a run
moves to another number of processes mid-epoch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from megalith.batching import epoch_order, shuffled_batches
from megalith.data.tensors import TensorTable
from megalith.runs import RunDir
from megalith.training.distributed import Distributed
from megalith.training.elastic import Attempt, describe_world_change, restart_plan


def _started(run: RunDir, attempt: Attempt, checkpoint: bool) -> None:
    run.path.mkdir(parents=True)
    (run.path / "config.yaml").write_text("name: x\n")
    attempt.claim(run)
    if checkpoint:
        (run.checkpoints / "step-000000003").mkdir()


def test_a_restart_resumes_only_its_own_run(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, other = Attempt("job-a", 0), Attempt("job-b", 0)
    mine, theirs, fresh = RunDir(tmp_path / "x-1"), RunDir(tmp_path / "x-2"), RunDir(tmp_path)
    _started(mine, first, checkpoint=True)
    _started(theirs, other, checkpoint=True)
    restarted = Attempt("job-a", 1)
    assert restart_plan(restarted, mine) == (True, False)
    assert restart_plan(restarted, theirs) == (False, False)  # never another job's run
    assert restart_plan(restarted, fresh) == (False, False)
    assert restart_plan(first, mine) == (False, False)  # a first try follows the usual rules
    assert restart_plan(Attempt(None, 1), mine) == (False, False)

    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "job-a")
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "2")
    assert Attempt.from_env() == Attempt("job-a", 2)
    assert Attempt.from_env().find_own_run(tmp_path, "x") == mine  # runs/NAME-TIME, no -o


def test_a_restart_before_any_checkpoint_starts_its_own_run_again(tmp_path) -> None:
    run = RunDir(tmp_path / "run")
    _started(run, Attempt("job-a", 0), checkpoint=False)
    assert restart_plan(Attempt("job-a", 1), run) == (False, True)  # overwrite its own files


def _rows_seen(order: torch.Tensor, table: TensorTable, world: int, first: int, last: int):
    """Row ids that each of `world` processes trains on, global batches first..last-1."""
    seen: list[int] = []
    for rank in range(world):
        ddp = Distributed(rank=rank, world_size=world)
        batches = shuffled_batches(table, 64, order, torch.device("cpu"), first, ddp.local_part)
        for i, batch in enumerate(batches, start=first):
            if i == last:
                break
            seen += batch.inputs["id"].tolist()
    return seen


@pytest.mark.parametrize(("before", "after"), [(2, 1), (1, 2), (2, 4), (4, 3)])
def test_a_new_world_size_sees_every_row_of_the_epoch_once(before: int, after: int) -> None:
    rows = 1001
    table = TensorTable({"id": torch.arange(rows)}, {}, np.arange(rows))
    order = epoch_order(rows, seed=3, epoch=1)
    stopped_at = 7  # global batches done before the processes changed
    seen = _rows_seen(order, table, before, 0, stopped_at)
    seen += _rows_seen(order, table, after, stopped_at, 10**6)
    assert len(seen) == len(set(seen)) == rows  # no row twice, none skipped


def test_the_log_says_what_changes_with_the_world_size() -> None:
    assert describe_world_change(2, 2, 64) is None
    assert describe_world_change(None, 2, 64) is None
    line = describe_world_change(2, 1, 64)
    assert line is not None and "global batch stays 64" in line and "64 per process" in line
