"""A recommender end to end on planted interactions: train, eval.json with both protocols and
the baselines, evaluate reusing the saved negatives, recommend, cold start, init."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import run_cli

import megalith as mg
from megalith.recommend.run import RecommenderRun
from megalith.recommend.synthetic import planted_interactions


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("recommend")
    frame = planted_interactions(n_users=300, n_items=200, per_user=25, strength=3.0, seed=2)
    frame.to_csv(folder / "ratings.csv", index=False)
    config = {
        "name": "planted",
        "data": {"source": str(folder / "ratings.csv")},
        "model": {"arch": "mf", "dim": 16},
        "recommend": {"timestamp": "timestamp", "eval_negatives": 50},
        "train": {
            "epochs": 15,
            "batch_size": 256,
            "optimizer": {"name": "adamw", "lr": 0.01, "weight_decay": 0.1},
        },
    }
    mg.train(config, output_dir=folder / "run")
    return folder


def test_the_model_beats_most_popular_by_a_wide_margin(trained: Path) -> None:
    scores = json.loads((trained / "run" / "eval.json").read_text())
    model, baselines = scores["test"], scores["recommender_baselines"]
    assert model["users"] == 300
    for metric in ("hr@10", "ndcg@10", "sampled_hr@10"):
        assert model[metric] > baselines["most_popular"][metric] + 0.1, metric
        assert baselines["most_popular"][metric] > baselines["random"][metric]
    assert (trained / "run" / "eval_negatives.safetensors").is_file()


def test_evaluate_reuses_the_saved_negatives(trained: Path) -> None:
    stored = json.loads((trained / "run" / "eval.json").read_text())
    outcome = run_cli("evaluate", trained / "run")
    assert outcome.code == 0, outcome.stderr
    again = json.loads(outcome.stdout)
    assert again["test"]["sampled_hr@10"] == stored["test"]["sampled_hr@10"]
    assert again["recommender_baselines"] == stored["recommender_baselines"]


def test_recommend_excludes_seen_items_and_flags_cold_users(trained: Path) -> None:
    run = mg.load(trained / "run")
    assert isinstance(run, RecommenderRun)
    table = run.recommend([1, 2, "nobody"], k=5)
    assert len(table) == 15 and table["rank"].tolist()[:5] == [1, 2, 3, 4, 5]
    seen = run.state.items[run.state.users == run.state.user_ids.index("1")]
    mine = table[table["user"] == "1"]["item"]
    assert not set(mine) & {run.state.item_ids[i] for i in seen}
    assert table[table["user"] == "nobody"]["known_user"].eq(False).all()
    popular = run.state.popularity().argsort()[::-1][:5]
    assert table[table["user"] == "nobody"]["item"].tolist() == [
        run.state.item_ids[i] for i in popular
    ]
    with_seen = run.recommend([1], k=200, exclude_seen=False)
    assert len(with_seen) == 200  # the whole catalogue, seen items included


def test_recommend_from_the_command_line(trained: Path) -> None:
    outcome = run_cli("recommend", trained / "run", "--users", "1,3", "--k", "3")
    assert outcome.code == 0, outcome.stderr
    lines = outcome.stdout.strip().splitlines()
    assert lines[0] == "user,rank,item,score,known_user,cold_start" and len(lines) == 7
    bad = run_cli("recommend", trained / "run", "--users", " , ")
    assert bad.code == 2 and "--users" in bad.stderr and "Traceback" not in bad.stderr


def test_init_recognises_an_interactions_table(trained: Path, tmp_path: Path) -> None:
    outcome = run_cli("init", trained / "ratings.csv", "--output", tmp_path / "cfg.yaml")
    assert outcome.code == 0, outcome.stderr
    config = yaml.safe_load((tmp_path / "cfg.yaml").read_text())
    assert config["model"]["arch"] == "mf"
    assert config["recommend"]["user"] == "user" and config["recommend"]["item"] == "item"
    assert config["recommend"]["timestamp"] == "timestamp"
    mg.train(tmp_path / "cfg.yaml", output_dir=tmp_path / "run", overrides=["train.epochs=1"])
    assert (tmp_path / "run" / "eval.json").is_file()


def test_report_and_export_from_the_command_line(trained: Path) -> None:
    (trained / "run" / "report.html").unlink()
    outcome = run_cli("report", trained / "run")
    assert outcome.code == 0, outcome.stderr
    assert "most_popular" in (trained / "run" / "report.html").read_text()
    exported = run_cli("export", trained / "run", "--output", trained / "bundle")
    assert exported.code == 0, exported.stderr
    assert (trained / "bundle" / "embeddings.safetensors").is_file()
    from_run = run_cli("recommend", trained / "run", "--users", "1,nobody", "--k", "3")
    from_bundle = run_cli("recommend", trained / "bundle", "--users", "1,nobody", "--k", "3")
    assert from_bundle.code == 0, from_bundle.stderr
    assert [line.split(",")[2] for line in from_bundle.stdout.splitlines()] == [
        line.split(",")[2] for line in from_run.stdout.splitlines()
    ]
    refused = run_cli("predict", trained / "run", "--data", trained / "ratings.csv")
    assert refused.code != 0 and "megalith recommend" in refused.stderr


def test_compare_puts_recommender_runs_side_by_side(trained: Path) -> None:
    from megalith.evaluate.compare import compare_runs, summarize_run

    config = yaml.safe_load((trained / "run" / "config.yaml").read_text())
    config["train"]["epochs"] = 1  # the same data and seed: the same candidates, a weaker model
    mg.train(config, output_dir=trained / "short")
    comparison = compare_runs([summarize_run(trained / "run"), summarize_run(trained / "short")])
    rows = {
        row[0]: (row[1:], best) for row, best in zip(comparison.rows, comparison.best, strict=True)
    }
    candidates, _ = rows["candidates"]
    assert candidates[0] == candidates[1] != "missing"
    assert rows["test hr@10"][1] == 0 and rows["test sampled_ndcg@10"][1] == 0  # higher wins
    assert rows["test users"][1] is None
    outcome = run_cli("compare", trained / "run", trained / "short", "-o", trained / "compare.html")
    assert outcome.code == 0, outcome.stderr
    assert "sampled_hr@10" in outcome.stdout and (trained / "compare.html").is_file()
