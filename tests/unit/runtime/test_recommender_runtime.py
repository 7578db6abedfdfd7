"""A recommender's export: vectors in a bundle (an ncf's pair scorer as ONNX), top-k without
PyTorch equal to the run's, and the FAISS index's recall@100 against exact search recorded."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import megalith as mg
from megalith.errors import RunError
from megalith.recommend.run import RecommenderRun
from megalith.recommend.synthetic import planted_interactions
from megalith.runtime.recommender import load_recommender_bundle


def _train(folder: Path, arch: str) -> RecommenderRun:
    planted_interactions(n_users=80, n_items=150, per_user=10).to_csv(folder / "t.csv")
    config = {
        "data": {"source": str(folder / "t.csv")},
        "model": {"arch": arch, "dim": 8},
        "recommend": {"eval_negatives": 10},
        "train": {"epochs": 2, "batch_size": 64},
    }
    run = mg.train(config, output_dir=folder / arch)
    assert isinstance(run, RecommenderRun)
    return run


def test_the_bundle_recommends_what_the_run_does_without_torch(tmp_path: Path) -> None:
    run = _train(tmp_path, "mf")
    bundle_dir = run.export()
    description = json.loads((bundle_dir / "bundle.json").read_text())
    assert description["task"] == "recommend" and description["checked_max_abs_difference"] < 1e-4
    assert description["faiss_recall@100"] >= 0.9  # faiss-cpu is in the dev extras
    users = ["1", "5", "nobody"]
    expected = run.recommend(users, k=7)
    found = load_recommender_bundle(bundle_dir).recommend(users, k=7)
    assert found[["user", "rank", "item", "known_user"]].equals(
        expected[["user", "rank", "item", "known_user"]]
    )
    assert (found["score"] - expected["score"]).abs().max() < 1e-4
    bundle = load_recommender_bundle(bundle_dir)
    for recommender in (run, bundle):  # one id alone is one user, not its characters
        assert set(recommender.recommend("15", k=2)["user"]) == {"15"}
        assert set(recommender.recommend(15, k=2)["user"]) == {"15"}
    code = (
        "import sys; from megalith.runtime.recommender import load_recommender_bundle; "
        f"t = load_recommender_bundle({str(bundle_dir)!r}).recommend(['1'], k=3); "
        "assert len(t) == 3 and 'torch' not in sys.modules, sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    with pytest.raises(RunError, match="already holds a bundle"):
        run.export()
    run.export(overwrite=True)


def test_faiss_answers_close_to_exact(tmp_path: Path) -> None:
    run = _train(tmp_path, "two_tower")
    bundle = load_recommender_bundle(run.export(tmp_path / "b"))
    exact = bundle.recommend(["3"], k=5, exclude_seen=False)["item"].tolist()
    bundle.use_faiss()
    approximate = bundle.recommend(["3"], k=5, exclude_seen=False)["item"].tolist()
    assert len(set(exact) & set(approximate)) >= 4


@pytest.mark.slow
def test_an_ncf_bundle_scores_pairs_with_onnxruntime_as_the_run_does(tmp_path: Path) -> None:
    run = _train(tmp_path, "ncf")
    bundle_dir = run.export()
    assert (bundle_dir / "pair_scorer.onnx").is_file()
    assert json.loads((bundle_dir / "bundle.json").read_text())["arch"] == "NeuMF"
    users = ["1", "5", "nobody"]
    expected = run.recommend(users, k=7)
    bundle = load_recommender_bundle(bundle_dir)
    found = bundle.recommend(users, k=7)
    assert found["item"].tolist() == expected["item"].tolist()
    assert (found["score"] - expected["score"]).abs().max() < 1e-4
    assert bundle.backend == "onnxruntime"
    with pytest.raises(RunError, match="no item vectors to index"):
        bundle.use_faiss()
    code = (
        "import sys; from megalith.runtime.recommender import load_recommender_bundle; "
        f"t = load_recommender_bundle({str(bundle_dir)!r}).recommend(['1'], k=3); "
        "assert len(t) == 3 and 'torch' not in sys.modules, sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
