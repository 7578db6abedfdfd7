"""Values come back as the user wrote them: labels such as '007' stay '007' in predictions,
probability columns, preprocessor.json and the report; predict writes input cells back as read;
a run reads new CSV files in the separator and decimal mark it was trained on."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import run_cli
from rich.console import Console

import megalith as mg

ROWS = 60
DEPTS = ["007", "010", "100"]


def _offices(rows: int = ROWS, seed: int = 0) -> pd.DataFrame:
    """Text cells that look like numbers or booleans, and a label that depends on them."""
    rng = np.random.default_rng(seed)
    plz = rng.choice(["01067", "10115", "04109"], rows)
    size = rng.uniform(10, 90, rows).round(1)
    flag = rng.choice(["TRUE", "FALSE"], rows)
    dept = np.where(size > 60, "100", np.where(plz == "01067", "007", "010"))
    return pd.DataFrame({"plz": plz, "size": size, "flag": flag, "dept": dept})


CONFIG: dict[str, Any] = {
    "inputs": [
        {"name": "plz", "type": "category"},
        {"name": "size", "type": "number"},
        {"name": "flag", "type": "binary"},
    ],
    "outputs": [{"name": "dept", "type": "category"}],
    "train": {"epochs": 2, "batch_size": 16},
}


def _train(source: Path, **config: Any) -> mg.Run:
    full = {**CONFIG, "data": {"source": str(source)}, **config}
    return mg.train(full, output_dir=source.parent / "run", console=Console(file=io.StringIO()))


def test_csv_labels_codes_and_flags_keep_their_spelling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    lines = ["plz,size,flag,dept"] + [
        f"{p},{s:.2f},{f},{d}" for p, s, f, d in _offices().itertuples(index=False)
    ]
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump({**CONFIG, "data": {"source": "t.csv"}}))
    assert run_cli("train", "cfg.yaml", "-o", "run").code == 0

    state = json.loads((tmp_path / "run" / "preprocessor.json").read_text())
    assert state["outputs"][0]["state"]["classes"] == DEPTS
    assert sorted(state["inputs"][0]["state"]["vocabulary"]) == ["01067", "04109", "10115"]
    assert state["inputs"][2]["state"]["values"] == ["FALSE", "TRUE"]
    assert ">007<" in (tmp_path / "run" / "report.html").read_text()  # per-class scores

    new = "plz,size,flag\n01067,20.50,TRUE\n04109, 75,false\n10115,1e1,FALSE\n"
    (tmp_path / "new.csv").write_text(new)
    predicted = run_cli("predict", "run", "--data", "new.csv", "--output", "pred.csv")
    assert predicted.code == 0, predicted.stderr
    written = pd.read_csv(tmp_path / "pred.csv", dtype=str, keep_default_na=False)
    assert list(written.columns) == [
        "plz",
        "size",
        "flag",
        "dept",
        *(f"dept_prob_{d}" for d in DEPTS),
    ]
    assert written[["plz", "size", "flag"]].values.tolist() == [
        ["01067", "20.50", "TRUE"],
        ["04109", " 75", "false"],
        ["10115", "1e1", "FALSE"],
    ]
    assert set(written["dept"]) <= set(DEPTS)
    stdout = run_cli("predict", "run", "--data", "new.csv")
    assert stdout.stdout.splitlines()[1].startswith("01067,20.50,TRUE,")

    labelled = "plz,size,flag,dept\n01067,20.50,TRUE,007\n04109,75,false,100\n10115,10,TRUE,010\n"
    (tmp_path / "labelled.csv").write_text(labelled)
    evaluated = run_cli("evaluate", "run", "--data", "labelled.csv")
    assert evaluated.code == 0, evaluated.stderr  # '007' is a known label, not 7
    assert 0 <= json.loads(evaluated.stdout)["accuracy"] <= 1


@pytest.mark.parametrize("suffix", ["parquet", "jsonl"])
def test_text_labels_from_parquet_and_jsonl_stay_text(tmp_path: Path, suffix: str) -> None:
    table = _offices()
    path = tmp_path / f"t.{suffix}"
    if suffix == "parquet":
        table.to_parquet(path)
    else:
        table.to_json(path, orient="records", lines=True)
    run = _train(path)
    predictions = run.predict(path)
    assert set(predictions["dept"]) <= set(DEPTS) and predictions["dept"].map(type).eq(str).all()
    assert [c for c in predictions.columns if c != "dept"] == [f"dept_prob_{d}" for d in DEPTS]
    from_frame = run.predict(_offices(rows=5, seed=3).drop(columns=["dept"]))
    assert set(from_frame["dept"]) <= set(DEPTS)


def test_integer_labels_from_a_frame_or_parquet_stay_integers(tmp_path: Path) -> None:
    table = _offices()
    table["dept"] = table["dept"].map({"007": 0, "010": 1, "100": 2})
    table.to_parquet(tmp_path / "t.parquet")
    run = _train(tmp_path / "t.parquet")
    predictions = run.predict(table.drop(columns=["dept"]))
    assert set(predictions["dept"]) <= {0, 1, 2}
    assert all(isinstance(v, int) for v in predictions["dept"])
    assert [c for c in predictions.columns if c != "dept"] == [
        "dept_prob_0",
        "dept_prob_1",
        "dept_prob_2",
    ]
    table.to_csv(tmp_path / "labelled.csv", index=False)  # '0', '1', '2' in a CSV read as ints
    assert 0 <= run.evaluate(tmp_path / "labelled.csv")["accuracy"] <= 1


def _flats(rows: int, seed: int) -> str:
    rng = np.random.default_rng(seed)
    area = rng.uniform(30, 120, rows).round(1)
    price = (area * 11.5).round(2)
    lines = ["flaeche;preis"] + [
        f"{a};{p}".replace(".", ",") for a, p in zip(area, price, strict=True)
    ]
    return "\n".join(lines) + "\n"


def test_a_run_reads_new_files_in_the_dialect_it_was_trained_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "flats.csv").write_text(_flats(ROWS, 0))
    config = {
        "data": {"source": "flats.csv"},
        "inputs": [{"name": "flaeche", "type": "number"}],
        "outputs": [{"name": "preis", "type": "number"}],
        "train": {"epochs": 2},
    }
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(config))
    assert run_cli("train", "cfg.yaml", "-o", "run").code == 0
    recorded = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["data"]
    assert (recorded["delimiter"], recorded["decimal"]) == (";", ",")

    # one column: nothing to detect a separator from, so only the run's settings read '54,5'
    (tmp_path / "new.csv").write_text("flaeche\n54,5\n71\n")
    assert run_cli("predict", "run", "--data", "new.csv", "--output", "pred.csv").code == 0
    expected = mg.load("run").predict(pd.DataFrame({"flaeche": [54.5, 71.0]}))["preis"]
    written = pd.read_csv(tmp_path / "pred.csv", sep=";", decimal=",", dtype={"flaeche": str})
    assert written["flaeche"].tolist() == ["54,5", "71"]  # as written, in the input's dialect
    np.testing.assert_allclose(written["preis"], expected, rtol=1e-6)
    api = mg.load("run").predict(tmp_path / "new.csv")["preis"]
    np.testing.assert_allclose(api, expected, rtol=1e-12)
    # a .tsv file says by its name that it is tab-separated, whatever the run recorded
    (tmp_path / "new.tsv").write_text("flaeche\tnote\n54,5\tx\n71\ty\n")
    from_tsv = mg.load("run").predict(tmp_path / "new.tsv")["preis"]
    np.testing.assert_allclose(from_tsv, expected, rtol=1e-12)


def test_predictions_to_parquet_keep_typed_numbers_and_text_codes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _offices().to_csv(tmp_path / "t.csv", index=False)
    _train(tmp_path / "t.csv")
    (tmp_path / "new.csv").write_text("plz,size,flag\n01067,20.50,TRUE\n")
    assert run_cli("predict", "run", "--data", "new.csv", "--output", "p.parquet").code == 0
    written = pd.read_parquet(tmp_path / "p.parquet")
    assert written.loc[0, ["plz", "size", "flag"]].tolist() == ["01067", 20.5, "TRUE"]
    assert written.loc[0, "dept"] in DEPTS
