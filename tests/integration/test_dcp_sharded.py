"""FSDP checkpoints written as shards by every process (torch.distributed.checkpoint, in
safetensors) resume on one process (2 -> 1) and read back whole equal the weights they were
written from; the run's model.safetensors stays one whole file. An unsharded checkpoint resumed
on two FSDP processes that write shards (1 -> 2) is tested in test_elastic.py (killed mid-epoch),
shards read by pieces on another number of processes in tests/unit/training/
test_dcp_resume_pieces.py."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from megalith.training import checkpoint as ckpt
from tests.multiprocess import megalith_train

pytestmark = pytest.mark.slow

CONFIG = {
    "name": "sharded",
    "data": {"source": "builtin:digits_table"},
    "inputs": [{"name": f"px{i}", "type": "number"} for i in (10, 20, 21, 26, 30, 36, 42, 43)],
    "outputs": [{"name": "label", "type": "category"}],
    "model": {"arch": "mlp", "hidden": [32], "dropout": 0.0},
    "train": {
        "epochs": 3,
        "batch_size": 64,
        "schedule": {"name": "constant"},
        "strategy": "fsdp",
        "baselines": False,
    },
}


def _megalith(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = megalith_train(folder, *args)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A config and its uninterrupted three epochs on one process."""
    folder = tmp_path_factory.mktemp("sharded")
    (folder / "cfg.yaml").write_text(yaml.safe_dump(CONFIG))
    _megalith(folder, "cfg.yaml", "-o", "reference")
    return folder


def _last_checkpoint(run: Path) -> Path:
    return sorted((run / "checkpoints").glob("step-*"))[-1]


def _assert_follows(run: Path, reference: Path) -> None:
    """Weights and test loss as the uninterrupted run's, within FSDP's reduction order."""
    a, b = load_file(reference / "model.safetensors"), load_file(run / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:  # one whole file, as one process writes it
        assert a[key].shape == b[key].shape, key
        torch.testing.assert_close(a[key], b[key], atol=2e-3, rtol=0)
    scores = [json.loads((r / "eval.json").read_text())["test"]["loss"] for r in (reference, run)]
    assert abs(scores[0] - scores[1]) < 1e-2


def test_two_processes_write_their_own_shards_and_one_resumes(folder: Path) -> None:
    _megalith(folder, "cfg.yaml", "-o", "two", "--devices", "2", "--set", "train.epochs=2")
    written = _last_checkpoint(folder / "two")
    shards = sorted(p.name for p in (written / "shards").iterdir())
    assert shards == [f"shard-0000{r}-model-00001-of-00001.safetensors" for r in (1, 2)]
    state = json.loads((written / "state.json").read_text())
    assert state["format"] == "dcp-safetensors" and state["loop"]["processes"] == 2
    assert not list(written.rglob("*.metadata"))  # nothing pickled to read back
    # read whole by this one process: the weights the two processes ended with
    loaded = ckpt.load_latest_checkpoint(folder / "two" / "checkpoints")
    assert loaded is not None and loaded.path == written
    final = load_file(folder / "two" / "model.safetensors")
    assert loaded.model.keys() == final.keys()
    assert all(torch.equal(loaded.model[k], final[k]) for k in final)

    resumed = _megalith(folder, "--resume", "two", "--set", "train.epochs=3")  # 2 -> 1
    assert "the checkpoint was written by 2" in resumed.stdout + resumed.stderr
    _assert_follows(folder / "two", folder / "reference")
