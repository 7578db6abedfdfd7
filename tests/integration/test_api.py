"""The Python API: train, load, predict, evaluate, resume; and every example config runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import REPO, make_table
from safetensors.torch import load_file

import megalith as mg

EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_trains_one_epoch(example: Path, tmp_path: Path) -> None:
    overrides = ["train.epochs=1", "train.max_steps=20"]  # the language model: 20 steps
    run = mg.train(example, output_dir=tmp_path / "run", overrides=overrides)
    assert "loss" in run.metrics["test"]
    assert (tmp_path / "run" / "model.safetensors").is_file()


def test_train_load_predict_from_python(tmp_path: Path) -> None:
    frame = make_table(rows=300)
    frame.to_parquet(tmp_path / "table.parquet")
    config = {
        "name": "api",
        "data": {"source": str(tmp_path / "table.parquet")},
        "inputs": [
            {"name": "size", "type": "number"},
            {"name": "color", "type": "category"},
            {"name": "member", "type": "binary"},
        ],
        "outputs": [{"name": "label", "type": "category"}],
        "train": {"epochs": 20, "batch_size": 32},
    }
    run = mg.train(config, output_dir=tmp_path / "run")
    loaded = mg.load(tmp_path / "run")
    rows = make_table(rows=50, seed=11)
    predictions = loaded.predict(rows.drop(columns=["label"]))
    assert list(predictions.index) == list(rows.index)
    assert (predictions["label"] == rows["label"]).mean() > 0.7
    assert run.predict(rows).equals(predictions)
    assert loaded.evaluate(rows)["accuracy"] > 0.7


def test_resumed_run_matches_the_uninterrupted_one(tmp_path: Path) -> None:
    example = REPO / "examples" / "digits.yaml"
    common = ["train.early_stop=null", "train.schedule.name=constant", "model.channels=[8, 16]"]
    straight = mg.train(example, output_dir=tmp_path / "a", overrides=[*common, "train.epochs=3"])
    mg.train(example, output_dir=tmp_path / "b", overrides=[*common, "train.epochs=2"])
    resumed = mg.train(resume=tmp_path / "b", overrides=["train.epochs=3"])
    a = load_file(tmp_path / "a" / "model.safetensors")
    b = load_file(tmp_path / "b" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.metrics["test"] == straight.metrics["test"]


def test_regression_on_a_builtin_table(tmp_path: Path) -> None:
    run = mg.train(REPO / "examples" / "diabetes_regression.yaml", output_dir=tmp_path / "run")
    assert run.metrics["test"]["r2"] > 0.3
