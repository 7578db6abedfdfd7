"""A private run on two processes with dropout, stopped mid-epoch and resumed, ends with the
weights of one left alone: the ranks' Poisson batches differ in size, so their generators
(dropout's) used to part while a checkpoint keeps rank 0's alone."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from conftest import make_table

from tests.multiprocess import run_ranks

pytestmark = pytest.mark.slow

_RANK = """
import hashlib, json, os, signal, sys
import torch
import megalith as mg
from megalith.training.callbacks import Callback
from megalith.training.safety import TrainingInterrupted

config, out, mode = json.loads(open(sys.argv[1]).read()), sys.argv[2], sys.argv[3]
torch.set_num_threads(1)


class Stop(Callback):  # a SIGTERM at step 7, inside epoch 1: every rank checkpoints and stops
    def on_step_end(self, step, epoch, rows, loss):
        if step == 7:
            os.kill(os.getpid(), signal.SIGTERM)


try:
    if mode == "resume":
        run = mg.train(resume=out)
    else:
        run = mg.train(config, output_dir=out, callbacks=[Stop()] if mode == "stop" else [])
except TrainingInterrupted:
    print(json.dumps({"stopped": True}))
    sys.exit(0)
digest = hashlib.sha256()
for name, tensor in sorted(run.model.state_dict().items()):
    digest.update(name.encode() + tensor.detach().cpu().contiguous().numpy().tobytes())
print(json.dumps({"weights": digest.hexdigest()}))
"""


def test_a_private_ddp_run_with_dropout_resumes_exactly(tmp_path: Path) -> None:
    make_table(rows=300).to_csv(tmp_path / "table.csv", index=False)
    config = {
        "name": "private-ddp-dropout",
        "data": {"source": str(tmp_path / "table.csv"), "split": {"val": 0.15, "test": 0.15}},
        "inputs": [{"name": "size", "type": "number"}, {"name": "color", "type": "category"}],
        "outputs": [{"name": "label", "type": "category"}],
        "model": {"arch": "mlp", "hidden": [32], "dropout": 0.3},
        "train": {
            "epochs": 2,
            "batch_size": 16,
            "checkpoint_every": 5,
            "privacy": {"epsilon": 8.0, "accountant": "rdp"},
            "baselines": False,
        },
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    script = tmp_path / "rank.py"
    script.write_text(textwrap.dedent(_RANK))

    def ranks(out: str, mode: str) -> list[dict[str, object]]:
        logs = run_ranks(script, 2, str(tmp_path / "config.json"), str(tmp_path / out), mode)
        return [json.loads(log.splitlines()[-1]) for log in logs]

    straight = ranks("a", "straight")
    assert ranks("b", "stop") == [{"stopped": True}] * 2
    resumed = ranks("b", "resume")
    assert resumed[0]["weights"] == resumed[1]["weights"] == straight[0]["weights"]
