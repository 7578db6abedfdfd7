"""Explicit feedback: recommend and the exported bundle report ratings in the table's units."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import megalith as mg
from megalith.recommend.synthetic import planted_interactions
from megalith.runtime.recommender import load_recommender_bundle


def test_explicit_scores_come_out_as_ratings_from_the_run_and_the_bundle(tmp_path: Path) -> None:
    table = tmp_path / "ratings.csv"
    frame = planted_interactions(n_users=60, n_items=50, per_user=12, strength=3.0, seed=2)
    frame["rating"] = frame["rating"] * 10 + 100  # 110-150: far from standardised units
    frame.to_csv(table, index=False)
    config = {
        "data": {"source": str(table)},
        "model": {"arch": "mf", "dim": 4},
        "recommend": {"rating": "rating", "feedback": "explicit", "eval_negatives": 20},
        "train": {"epochs": 15, "batch_size": 128, "optimizer": {"lr": 0.02}},
    }
    run = mg.train(config, output_dir=tmp_path / "run")
    top = run.recommend(["1", "2", "stranger"], k=5)
    known = top[top["known_user"]]
    assert known["score"].between(90, 170).all()  # ratings, not z-scores near 0
    assert abs(known["score"].mean() - frame["rating"].mean()) < 25
    assert 0 < run.metrics["test"]["rmse"] < frame["rating"].std() * 1.5  # rating units too
    bundle = load_recommender_bundle(run.export())
    exported = bundle.recommend(["1", "2", "stranger"], k=5)
    assert exported["item"].tolist() == top["item"].tolist()
    assert np.allclose(exported["score"], top["score"], atol=1e-3)
