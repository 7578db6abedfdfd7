"""The recommender's training path: explicit ratings, other splits and families, bad data
refused before the run directory is touched."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import megalith as mg
from megalith.config import validate_config
from megalith.errors import ConfigError, DataError, RunError
from megalith.recommend.synthetic import planted_interactions
from megalith.recommend.train import (
    build_recommender,
    fit,
    held_out_negatives,
    prepare_state,
    score_run,
)


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("train") / "t.csv"
    frame = planted_interactions(n_users=120, n_items=80, per_user=15, strength=3.0, seed=4)
    frame["step"] = frame.groupby("user").cumcount()  # every user active on every step
    frame.to_csv(path, index=False)
    return path


def _config(table: Path, epochs: int = 8, **recommend: object) -> dict[str, object]:
    return {
        "data": {"source": str(table)},
        "model": {"arch": "mf", "dim": 8},
        "recommend": {"timestamp": "timestamp", "eval_negatives": 20, **recommend},
        "train": {"epochs": epochs, "batch_size": 128, "optimizer": {"lr": 0.02}},
    }


def test_explicit_ratings_are_regressed_better_than_the_mean(table: Path) -> None:
    config = _config(table, 20, feedback="explicit", rating="rating", split="random")
    config["model"] = {"arch": "mf", "dim": 4}
    config["train"]["optimizer"]["weight_decay"] = 1.0  # type: ignore[index]  # ~1,400 ratings
    cfg = validate_config(config)
    state = prepare_state(cfg)
    model = build_recommender(cfg, state)
    fit(model, state, cfg)
    scores = score_run(model, state, held_out_negatives(state, cfg.recommend, 0), cfg)
    assert state.ratings is not None
    test_ratings = state.ratings[state.split == 2]
    spread = float(np.sqrt(((test_ratings - state.rating_mean) ** 2).mean()))
    assert scores["test"]["rmse"] < 0.9 * spread
    assert scores["test"]["mae"] > 0
    assert cfg.recommend is not None and cfg.recommend.training_loss == "mse"  # not `loss`


@pytest.mark.parametrize(
    ("arch", "recommend"),
    [
        (
            "ncf",
            {
                "split": "time",
                "timestamp": "step",
                "val": True,
                "loss": "bpr",
                "sampler": "popularity",
            },
        ),
        ("two_tower", {"split": "random", "loss": "softmax"}),
    ],
)
def test_other_families_splits_and_losses_train_and_log(
    table: Path, tmp_path: Path, arch: str, recommend: dict[str, object]
) -> None:
    config = _config(table, **recommend)
    config["model"] = {"arch": arch, "dim": 8}
    run = mg.train(config, output_dir=tmp_path / "run")
    scores = run.metrics
    assert scores["test"]["users"] > 0
    assert (
        scores["test"]["sampled_hr@10"] > scores["recommender_baselines"]["random"]["sampled_hr@10"]
    )
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 8
    if recommend.get("val"):
        assert "val/hr@10" in lines[-1]
    assert "<table>" in (tmp_path / "run" / "report.html").read_text()


def test_bad_data_is_refused_before_the_run_directory_exists(table: Path, tmp_path: Path) -> None:
    config = _config(table)
    config["recommend"] = {"user": "customer"}
    with pytest.raises(DataError, match="no column 'customer'"):
        mg.train(config, output_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_recommender_configs_take_no_inputs(table: Path) -> None:
    config = _config(table)
    with pytest.raises(ConfigError, match="leave inputs and outputs out"):
        validate_config({**config, "inputs": [{"name": "user", "type": "category"}]})
    with pytest.raises(ConfigError, match="recommend: is read by the recommenders"):
        validate_config({**config, "model": {"arch": "mlp"}})


def test_a_resumed_run_ends_where_an_uninterrupted_one_does(table: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    own = tmp_path / "t.csv"
    own.write_bytes(table.read_bytes())
    config = _config(own, 4, sampler="popularity", val=True)
    whole = mg.train(config, output_dir=tmp_path / "whole")
    config["train"]["epochs"] = 2  # type: ignore[index]
    mg.train(config, output_dir=tmp_path / "part")
    assert (tmp_path / "part" / "checkpoints" / "step-000000002" / "state.json").is_file()
    resumed = mg.train(resume=tmp_path / "part", overrides=["train.epochs=4"])
    weights = [load_file(run.path / "model.safetensors") for run in (whole, resumed)]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert resumed.metrics["test"] == whole.metrics["test"]
    lines = (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()
    assert lines == (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()
    with pytest.raises(ConfigError, match=r"cannot resume .* with changed model\.dim"):
        mg.train(resume=tmp_path / "part", overrides=["model.dim=4"])
    pd.read_csv(own).iloc[:-1].to_csv(own, index=False)  # the data changed since
    with pytest.raises(RunError, match=r"its interactions \(ids, ratings or side tables\) changed"):
        mg.train(resume=tmp_path / "part", overrides=["train.epochs=5"])


def test_a_user_who_met_every_item_is_left_out_of_the_sampled_protocol(tmp_path: Path) -> None:
    path = tmp_path / "small.csv"
    path.write_text("user,item\n1,a\n1,b\n1,c\n2,a\n2,b\n", encoding="utf-8")
    config = validate_config(
        {"data": {"source": str(path)}, "model": {"arch": "mf", "dim": 4}, "recommend": {}}
    )
    users, positives, negatives = held_out_negatives(
        prepare_state(config), config.recommend, config.seed
    )
    assert len(users) == len(positives) == len(negatives) == 1  # user 2 only: item c
    assert set(negatives[0].tolist()) == {2}
    path.write_text("user,item\n1,a\n1,b\n2,a\n2,b\n", encoding="utf-8")
    with pytest.raises(DataError, match="interacted with all 2 items"):
        held_out_negatives(prepare_state(config), config.recommend, config.seed)


def test_a_time_cut_leaving_only_cold_test_users_is_refused_before_training(
    tmp_path: Path,
) -> None:
    path = tmp_path / "late.csv"  # users 3 and 4 arrive after the cut: no train interactions
    rows = ["1,a,1", "1,b,2", "2,a,3", "2,c,4", "3,a,5", "3,b,6", "4,c,7", "4,a,8"]
    path.write_text("user,item,timestamp\n" + "\n".join(rows) + "\n", encoding="utf-8")
    config = {
        "data": {"source": str(path)},
        "model": {"arch": "two_tower", "dim": 4},
        "recommend": {"timestamp": "timestamp", "split": "time", "time_cut": 0.5},
    }
    with pytest.raises(DataError, match="no user with a test interaction has one in train"):
        mg.train(config, output_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_an_overwritten_run_starts_its_metrics_afresh_and_drops_its_bundle(tmp_path: Path) -> None:
    path = tmp_path / "small.csv"
    path.write_text("user,item\n1,a\n1,b\n1,c\n2,a\n2,b\n2,d\n", encoding="utf-8")
    config = {
        "data": {"source": str(path)},
        "model": {"arch": "mf", "dim": 4},
        "recommend": {"eval_negatives": 1},
        "train": {"epochs": 2},
    }
    run = mg.train(config, output_dir=tmp_path / "run")
    run.export()
    assert (tmp_path / "run" / "bundle").is_dir()
    mg.train(config, output_dir=tmp_path / "run", overwrite=True)
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2  # not 4
    assert not (tmp_path / "run" / "bundle").exists()  # it held the old model's vectors
