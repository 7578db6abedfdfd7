"""Baselines and loud warnings on real (tiny) runs: eval.json, the summary and report.html."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import REPO
from rich.console import Console
from sklearn import metrics as sk
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

import megalith as mg
from megalith.evaluate.report import write_report


def _train(config: Path | dict, output: Path, *overrides: str) -> tuple[mg.Run, str]:
    """Train, returning the run and what the console printed."""
    console = Console(record=True, width=200, force_terminal=False)
    run = mg.train(config, output_dir=output, overrides=list(overrides), console=console)
    return run, console.export_text()


@pytest.fixture(scope="module")
def cancer(tmp_path_factory: pytest.TempPathFactory) -> tuple[mg.Run, str]:
    output = tmp_path_factory.mktemp("runs") / "cancer"
    return _train(REPO / "examples" / "breast_cancer.yaml", output, "train.epochs=1")


def test_baselines_in_eval_json_equal_scikit_learn_on_the_run_split(cancer) -> None:
    run, printed = cancer
    _, splits = run.data_splits()
    train, test = splits["train"], splits["test"]
    columns = [feature.name for feature in run.config.inputs]
    scaler = StandardScaler().fit(train[columns])
    model = LogisticRegression(max_iter=200).fit(scaler.transform(train[columns]), train.diagnosis)
    positive = model.predict_proba(scaler.transform(test[columns]))[:, 1]  # 'malignant' > 'benign'
    truth = (test.diagnosis == "malignant").to_numpy()

    entry = json.loads((run.path / "eval.json").read_text())["baselines"]["diagnosis"]
    assert entry["linear"]["accuracy"] == pytest.approx(
        sk.accuracy_score(truth, positive > 0.5), abs=1e-6
    )
    assert entry["linear"]["auc"] == pytest.approx(sk.roc_auc_score(truth, positive), abs=1e-5)
    assert entry["majority"]["accuracy"] == pytest.approx(1 - truth.mean(), abs=1e-6)
    assert entry["linear_fit"]["train_rows"] == len(train)
    assert entry["linear_fit"]["features"] == len(columns)
    assert "majority (test)" in printed and "linear (test)" in printed
    linear_accuracy = f"{entry['linear']['accuracy']:.4f}"
    assert any(
        line.startswith("│ accuracy") and linear_accuracy in line for line in printed.splitlines()
    )


def test_the_report_shows_the_baselines_and_an_old_run_still_renders(cancer) -> None:
    run, _ = cancer
    page = (run.path / "report.html").read_text(encoding="utf-8")
    assert "majority (test)" in page and 'id="baselines"' in page
    assert "logistic regression on 14 features" in page
    scores = json.loads((run.path / "eval.json").read_text())
    for key in ("baselines", "warnings"):  # as a run trained before baselines existed
        scores.pop(key)
    (run.path / "eval.json").write_text(json.dumps(scores))
    page = write_report(run.path).read_text(encoding="utf-8")
    assert "majority (test)" not in page and 'id="baselines"' not in page
    assert 'id="warnings"' not in page and 'id="overview"' in page


@pytest.fixture(scope="module")
def imbalanced(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """25% positives and inputs that say nothing about them: the network learns the prior."""
    folder = tmp_path_factory.mktemp("imbalanced")
    rng = np.random.default_rng(0)
    rows = 300
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=rows),
            "b": rng.normal(size=rows),
            "y": np.where(rng.random(rows) < 0.25, "yes", "no"),
        }
    )
    frame.to_csv(folder / "table.csv", index=False)
    return folder / "table.csv"


def _config(source: Path) -> dict:
    return {
        "name": "imbalanced",
        "data": {"source": str(source)},
        "inputs": [{"name": "a", "type": "number"}, {"name": "b", "type": "number"}],
        "outputs": [{"name": "y", "type": "binary"}],
        "train": {"epochs": 3},
    }


def test_a_classifier_predicting_one_class_is_shouted_about(imbalanced, tmp_path) -> None:
    run, printed = _train(_config(imbalanced), tmp_path / "run")
    kinds = [w["kind"] for w in run.metrics["warnings"]]
    assert "single_class" in kinds
    assert run.metrics["test"]["f1"] == 0.0  # what the warning is about
    assert "WARNING: y: the network predicts 'no' for every one of the 30 test rows" in printed
    assert "Likely causes: too few steps (12 optimizer steps in 3 epochs" in printed
    page = (run.path / "report.html").read_text(encoding="utf-8")
    assert page.index('<section id="warnings"') < page.index('<section id="overview"')
    assert "predicts &#39;no&#39; for every one of the 30 test rows" in page


def test_baselines_false_turns_them_off(imbalanced, tmp_path) -> None:
    run, printed = _train(_config(imbalanced), tmp_path / "run", "train.baselines=false")
    assert "baselines" not in run.metrics
    assert [w["kind"] for w in run.metrics["warnings"]] == ["single_class"]  # needs no baseline
    assert "linear (test)" not in printed
    assert "linear (test)" not in (run.path / "report.html").read_text(encoding="utf-8")
