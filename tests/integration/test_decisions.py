"""Binary decisions: the metrics describe what predict does, auto thresholds, class weights."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score

import megalith as mg


def _rare_positives(rows: int, share: float, seed: int = 0) -> pd.DataFrame:
    """A binary target `fraud` (yes/no) with about `share` positives, learnable from a and b."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=rows), rng.normal(size=rows)
    score = 1.2 * a + 0.8 * b + rng.normal(0, 0.7, rows)
    fraud = np.where(score > np.quantile(score, 1 - share), "yes", "no")
    return pd.DataFrame({"a": a.round(4), "b": b.round(4), "fraud": fraud})


def _config(tmp_path: Path, frame: pd.DataFrame, **output: Any) -> dict[str, Any]:
    frame.to_csv(tmp_path / "rows.csv", index=False)
    return {
        "data": {"source": str(tmp_path / "rows.csv")},
        "inputs": [{"name": "a", "type": "number"}, {"name": "b", "type": "number"}],
        "outputs": [{"name": "fraud", "type": "binary", **output}],
        "model": {"arch": "mlp", "hidden": [16]},
        "train": {"epochs": 4, "batch_size": 64, "optimizer": {"name": "adamw", "lr": 0.01}},
    }


def _decided(run: mg.Run, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(truth, predict's decisions) as 0 / 1 for the rows of `frame`."""
    predicted = run.predict(frame.drop(columns="fraud"))["fraud"]
    return (frame["fraud"] == "yes").to_numpy(), (predicted == "yes").to_numpy()


def test_every_decision_metric_uses_the_threshold_predict_applies(tmp_path: Path) -> None:
    config = _config(tmp_path, _rare_positives(3000, 0.03), threshold=0.2)
    run = mg.train(config, output_dir=tmp_path / "run")
    _, splits = run.data_splits()
    truth, decided = _decided(run, splits["test"])
    test = run.metrics["test"]
    assert test["accuracy"] == pytest.approx(accuracy_score(truth, decided), abs=1e-6)
    assert test["f1"] == pytest.approx(f1_score(truth, decided), abs=1e-6)
    probabilities = run.predict(splits["test"])["fraud_prob_yes"].to_numpy()
    assert decided.sum() == (probabilities > 0.2).sum() > (probabilities > 0.5).sum()
    assert run.evaluate()["f1"] == pytest.approx(test["f1"])  # `megalith evaluate` agrees
    summary = (tmp_path / "run" / "report.html").read_text()
    assert "threshold 0.2" in summary


def test_auto_threshold_is_chosen_on_val_saved_and_applied(tmp_path: Path) -> None:
    config = _config(tmp_path, _rare_positives(3000, 0.05), threshold="auto")
    run = mg.train(config, output_dir=tmp_path / "run")
    saved = json.loads((tmp_path / "run" / "preprocessor.json").read_text())
    chosen = saved["outputs"][0]["state"]["threshold"]
    assert 0 < chosen < 1 and chosen != 0.5
    assert "threshold: auto" in (tmp_path / "run" / "config.yaml").read_text()
    reloaded = mg.load(tmp_path / "run")  # predict in another process applies it too
    _, splits = reloaded.data_splits()
    truth, decided = _decided(reloaded, splits["val"])
    probabilities = reloaded.predict(splits["val"])["fraud_prob_yes"].to_numpy()
    assert (decided == (probabilities > chosen)).all()
    best = f1_score(truth, decided)
    assert best >= f1_score(truth, probabilities > 0.5, zero_division=0)
    assert run.metrics["val"]["f1"] == pytest.approx(best, abs=1e-6)
    assert "auto: best F1 on the val split" in (tmp_path / "run" / "report.html").read_text()


def test_balanced_class_weights_find_the_rare_class(tmp_path: Path) -> None:
    frame = _rare_positives(2000, 0.08, seed=3)
    config = _config(tmp_path, frame)
    config["train"].update(epochs=1, optimizer={"name": "sgd", "lr": 0.01})
    plain = mg.train(config, output_dir=tmp_path / "plain")
    config["outputs"][0]["class_weights"] = "balanced"
    balanced = mg.train(config, output_dir=tmp_path / "balanced")
    _, splits = plain.data_splits()
    _, by_plain = _decided(plain, splits["test"])
    _, by_balanced = _decided(balanced, splits["test"])
    assert by_plain.sum() == 0  # the unweighted model predicts the majority for every row
    assert by_balanced.sum() > 0
    assert balanced.metrics["test"]["recall"] > 0.5 > plain.metrics["test"]["recall"]
