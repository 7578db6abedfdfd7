"""DP-SGD on two Gloo processes (Opacus's distributed DP-SGD): the run learns, spends the
single-process epsilon for its steps and global sample rate, every rank ends with the same
weights, and a run with dropout stopped mid-epoch resumes to the weights of one left alone, bit
for bit (the ranks' Poisson batches differ in size, so their dropout draws used to move their
generators apart while a checkpoint keeps rank 0's alone)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import make_table
from opacus.accountants import RDPAccountant
from opacus.accountants.utils import get_noise_multiplier

from tests.multiprocess import train_ranks

# the reference noise search below is Opacus's own, warnings and all
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:Optimal order:UserWarning")]


def _config(table: Path) -> dict[str, Any]:
    return {
        "name": "private-ddp",
        "data": {"source": str(table), "split": {"val": 0.15, "test": 0.15}},
        "inputs": [
            {"name": "size", "type": "number"},
            {"name": "color", "type": "category"},
            {"name": "member", "type": "binary"},
        ],
        "outputs": [{"name": "label", "type": "category"}],
        "model": {"arch": "mlp", "hidden": [32], "dropout": 0.3},
        "train": {
            "epochs": 3,
            "batch_size": 32,
            "checkpoint_every": 5,
            "optimizer": {"name": "adam", "lr": 0.01},
            "privacy": {"epsilon": 8.0, "max_grad_norm": 1.0, "accountant": "rdp"},
            "baselines": False,
        },
    }


def test_two_private_processes_learn_spend_the_single_process_epsilon_and_resume(
    tmp_path: Path,
) -> None:
    make_table(rows=600).to_csv(tmp_path / "table.csv", index=False)
    config = _config(tmp_path / "table.csv")

    straight = train_ranks(config, tmp_path / "a", "straight")
    assert straight[0]["weights"] == straight[1]["weights"]  # noise added once, then reduced
    metrics = json.loads((tmp_path / "a" / "eval.json").read_text())
    privacy = metrics["privacy"]
    assert metrics["training"]["processes"] == 2
    assert privacy["sample_rate"] == pytest.approx(32 / 420, abs=1e-6)  # the global rate
    assert privacy["steps"] == 3 * 14  # ceil(420 / 32) per epoch, as in one process
    sigma = get_noise_multiplier(  # as one process chooses it for these steps and rate
        target_epsilon=8.0, target_delta=1 / 4200, sample_rate=32 / 420, steps=42, accountant="rdp"
    )
    assert privacy["noise_multiplier"] == pytest.approx(sigma, abs=1e-4)
    reference = RDPAccountant()
    reference.history = [(sigma, 32 / 420, 42)]
    assert privacy["epsilon"] == pytest.approx(reference.get_epsilon(1 / 4200), abs=1e-4)
    assert privacy["epsilon"] <= 8.0
    losses = [
        json.loads(line)["train/loss"]
        for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()
        if "privacy/epsilon" in line
    ]
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert metrics["test"]["accuracy"] > 0.5  # three classes: chance is about 0.4

    assert train_ranks(config, tmp_path / "b", "stop", stop_step=7) == [{"stopped": True}] * 2
    resumed = train_ranks(config, tmp_path / "b", "resume")  # from step 7, inside epoch 1
    assert resumed[0]["weights"] == resumed[1]["weights"] == straight[0]["weights"]
    again = json.loads((tmp_path / "b" / "eval.json").read_text())["privacy"]
    assert again["epsilon"] == privacy["epsilon"] and again["steps"] == privacy["steps"]
