"""train.privacy end to end: epsilon recorded, the model still learns, exact resume, refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import make_table, run_cli
from safetensors.torch import load_file

import megalith as mg
from megalith.errors import ConfigError
from megalith.training.callbacks import Callback


@pytest.fixture
def table(tmp_path: Path) -> Path:
    path = tmp_path / "table.csv"
    make_table(rows=600).to_csv(path, index=False)
    return path


def _config(table: Path, **train: Any) -> dict[str, Any]:
    return {
        "name": "private",
        "data": {"source": str(table), "split": {"val": 0.15, "test": 0.15}},
        "inputs": [
            {"name": "size", "type": "number"},
            {"name": "color", "type": "category"},
            {"name": "member", "type": "binary"},
        ],
        "outputs": [{"name": "label", "type": "category"}],
        "model": {"arch": "mlp", "hidden": [32], "batch_norm": True},
        "train": {
            "epochs": 4,
            "batch_size": 32,
            "optimizer": {"name": "adam", "lr": 0.01},
            # rdp: its noise search takes a second here, prv's ten (prv in the CLI test)
            "privacy": {"epsilon": 8.0, "max_grad_norm": 1.0, "accountant": "rdp"},
            "baselines": False,
            **train,
        },
    }


@pytest.mark.slow
def test_private_run_learns_and_records_epsilon_everywhere(tmp_path: Path, table: Path) -> None:
    run = mg.train(_config(table), output_dir=tmp_path / "run")
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    epochs = [json.loads(line) for line in lines if "privacy/epsilon" in line]
    spent = [record["privacy/epsilon"] for record in epochs]
    assert len(spent) == 4 and spent == sorted(spent) and 0 < spent[0] < spent[-1] <= 8.0
    privacy = run.metrics["privacy"]
    assert privacy["epsilon"] == pytest.approx(spent[-1], abs=1e-3)
    assert privacy["delta"] == pytest.approx(1 / (10 * 420))  # 70% of 600 rows train
    assert privacy["steps"] == privacy["planned_steps"] == 4 * 14  # ceil(420 / 32) per epoch
    assert "size: " in " ".join(privacy["fitted_from_private_rows"])  # its mean/std, not covered
    assert run.metrics["test"]["accuracy"] > 0.6  # three classes: chance is about 0.4
    report = (tmp_path / "run" / "report.html").read_text()
    assert "privacy ε" in report and "Not covered" in report
    loaded = mg.load(tmp_path / "run")  # BatchNorm -> GroupNorm again, so the weights fit
    assert any(isinstance(m, torch.nn.GroupNorm) for m in loaded.model.modules())
    assert loaded.evaluate()["accuracy"] == pytest.approx(run.metrics["test"]["accuracy"])


class _Crash(Callback):
    """Stops the process (as a kill would) at one optimizer step."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, step: int, epoch: int, rows: int, loss: float | None) -> None:
        if step == self.step:
            raise KeyboardInterrupt


@pytest.mark.slow
def test_resumed_private_run_matches_the_uninterrupted_one(tmp_path: Path, table: Path) -> None:
    config = _config(table, epochs=2, checkpoint_every=5, grad_accumulation=2, batch_size=16)
    straight = mg.train(config, output_dir=tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        mg.train(config, output_dir=tmp_path / "b", callbacks=[_Crash(step=12)])
    before = (tmp_path / "b" / "config.yaml").read_text()
    with pytest.raises(ConfigError, match=r"chosen for 28 steps .* 56 steps would spend epsilon"):
        mg.train(resume=tmp_path / "b", overrides=["train.epochs=4"])  # over the budget
    assert (tmp_path / "b" / "config.yaml").read_text() == before  # refused before any write
    resumed = mg.train(resume=tmp_path / "b")  # from step 10, inside the first epoch (14 steps)
    a = load_file(tmp_path / "a" / "model.safetensors")
    b = load_file(tmp_path / "b" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.metrics["privacy"]["epsilon"] == straight.metrics["privacy"]["epsilon"]
    assert resumed.metrics["privacy"]["steps"] == straight.metrics["privacy"]["steps"] == 28


def test_unsupported_settings_are_refused_before_the_run_directory(
    tmp_path: Path, table: Path
) -> None:
    with pytest.raises(ConfigError, match=r"train\.clip_grad_norm"):
        mg.train(_config(table, clip_grad_norm=1.0), output_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_cli_prints_the_batch_norm_notice_and_epsilon(tmp_path: Path, table: Path) -> None:
    config = _config(table, epochs=1)
    config["train"]["privacy"]["accountant"] = "prv"
    (tmp_path / "private.yaml").write_text(json.dumps(config))
    outcome = run_cli("train", tmp_path / "private.yaml", "--output-dir", tmp_path / "run")
    assert outcome.code == 0, outcome.stderr
    assert "(BatchNorm1d) replaced by GroupNorm" in outcome.stderr
    assert "prv accountant" in outcome.stderr
    assert "privacy: epsilon" in outcome.stderr and "not the preprocessing" in outcome.stderr


@pytest.mark.slow
def test_public_data_fits_the_preprocessing_instead(tmp_path: Path, table: Path) -> None:
    public = make_table(rows=200, seed=5)
    public["size"] = public["size"] + 100.0  # statistics no private row could give
    public.to_csv(tmp_path / "public.csv", index=False)
    config = _config(table, epochs=1)
    config["train"]["privacy"]["public_data"] = str(tmp_path / "public.csv")
    run = mg.train(config, output_dir=tmp_path / "run")
    privacy = run.metrics["privacy"]
    assert privacy["fitted_from_private_rows"] == [] and privacy["not_covered"] is None
    assert privacy["preprocessing_fitted_on"].endswith("public.csv")
    stats = json.loads((tmp_path / "run" / "preprocessor.json").read_text())["inputs"][0]
    assert stats["state"]["mean"] == pytest.approx(public["size"].mean(), rel=1e-3)
