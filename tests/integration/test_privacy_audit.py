"""`megalith audit-privacy`: a model built to memorise leaks, a random one does not."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import make_table, run_cli

import megalith as mg
from megalith.errors import DataError
from megalith.models import build_model
from megalith.privacy import audit_privacy
from megalith.run import Run


def _train(folder: Path, inputs: list[str], epochs: int) -> mg.Run:
    frame = make_table(rows=400)
    frame["label"] = np.random.default_rng(0).choice(["a", "b"], len(frame))
    frame.to_csv(folder / "table.csv", index=False)
    config = {
        "name": "memorise",
        "data": {"source": str(folder / "table.csv"), "split": {"val": 0.0, "test": 0.5}},
        "inputs": [{"name": name, "type": "category"} for name in inputs],
        "outputs": [{"name": "label", "type": "category"}],
        "model": {"arch": "mlp", "hidden": [64], "dropout": 0.0},
        "train": {
            "epochs": epochs,
            "batch_size": 20,
            "optimizer": {"name": "adam", "lr": 0.02},
            "baselines": False,
        },
    }
    return mg.train(config, output_dir=folder / "run")


@pytest.fixture(scope="module")
def memorised(tmp_path_factory: pytest.TempPathFactory) -> mg.Run:
    """Random labels, half the rows held out, each row's id as a category (an embedding per
    train row): all the model can do is memorise."""
    return _train(tmp_path_factory.mktemp("audit"), ["id", "color"], epochs=10)


@pytest.mark.slow
def test_memorising_model_leaks(memorised: mg.Run) -> None:
    leaked = {r.attack: r for r in audit_privacy(memorised, write=False)}
    assert leaked["loss_threshold"].auc > 0.75
    assert leaked["likelihood_ratio"].auc > 0.7
    assert leaked["loss_threshold"].members == leaked["loss_threshold"].non_members == 200


@pytest.mark.slow
def test_random_model_does_not_leak(tmp_path: Path) -> None:
    trained = _train(tmp_path, ["color", "member"], epochs=1)  # inputs shared by many rows
    spec = trained.preprocessor
    fresh = build_model(trained.config.model, spec.input_specs, spec.output_specs)
    untrained = Run(trained.path, trained.config, trained.preprocessor, fresh)
    for result in audit_privacy(untrained, write=False):
        assert abs(result.auc - 0.5) < 0.08, result


@pytest.mark.slow
def test_cli_audits_compares_and_adds_a_report_section(memorised: mg.Run, tmp_path: Path) -> None:
    twin = _twin(memorised, tmp_path / "twin")  # the same weights and rows
    outcome = run_cli("audit-privacy", memorised.path, "--compare", twin)
    assert outcome.code == 0, outcome.stderr
    assert "loss_threshold" in outcome.stdout and "likelihood_ratio" in outcome.stdout
    record = json.loads((memorised.path / "privacy-audit.json").read_text())
    assert len(record["rows"]) == 4 and record["rows"][0]["auc"] == record["rows"][2]["auc"]
    report = (memorised.path / "report.html").read_text()
    assert "Membership-inference audit" in report


def test_cli_refuses_a_missing_run(tmp_path: Path) -> None:
    outcome = run_cli("audit-privacy", tmp_path / "nowhere")
    assert outcome.code != 0 and "Traceback" not in outcome.stderr


def _twin(run: mg.Run, folder: Path, **data: object) -> Path:
    """A copy of `run` (the same weights) whose config.yaml reads other `data` settings."""
    shutil.copytree(run.path, folder, ignore=shutil.ignore_patterns("checkpoints"))
    config = yaml.safe_load((folder / "config.yaml").read_text())
    config["data"].update(data)
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    return folder


@pytest.mark.slow
def test_a_compared_run_on_other_rows_is_refused_naming_both(
    memorised: mg.Run, tmp_path: Path
) -> None:
    source = Path(memorised.config.data.source)
    shutil.copy(source, tmp_path / "copy.csv")  # the same rows elsewhere: the same data
    moved = _twin(memorised, tmp_path / "moved", source=str(tmp_path / "copy.csv"))
    assert len(audit_privacy(memorised, moved, write=False, max_rows=20)) == 4

    resplit = _twin(memorised, tmp_path / "resplit", split={"val": 0.0, "test": 0.4})
    with pytest.raises(DataError) as caught:
        audit_privacy(memorised, resplit, write=False)
    assert str(caught.value) == (
        f"--compare {resplit}: its train rows are not those of {memorised.path} "
        "(data.split.test 0.5 vs 0.4); compare a run trained on the same data and split, such "
        "as its non-private twin"
    )

    make_table(rows=400, seed=1).to_csv(tmp_path / "other.csv", index=False)
    other = _twin(memorised, tmp_path / "other", source=str(tmp_path / "other.csv"))
    before = sorted((p.name, p.stat().st_mtime_ns) for p in memorised.path.iterdir())
    outcome = run_cli("audit-privacy", memorised.path, "--compare", other)
    assert outcome.code == 2 and "Traceback" not in outcome.stderr
    assert len(outcome.stderr.strip().splitlines()) == 1
    assert f"--compare {other}: its train rows are not those of {memorised.path}" in (
        outcome.stderr
    )
    assert f"data.source {source} vs {tmp_path / 'other.csv'}" in outcome.stderr
    assert sorted((p.name, p.stat().st_mtime_ns) for p in memorised.path.iterdir()) == before
