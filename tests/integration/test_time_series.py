"""Time series end to end: a `sequence` input learns a series' shape (rising, falling,
oscillating) and its slope from a CSV whose cells are written in every supported form."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import megalith as mg

SHAPES = ("rising", "falling", "oscillating")


def series_table(rows: int = 600, seed: int = 0) -> pd.DataFrame:
    """One series of 10-40 noisy steps per row, its shape and its slope (0 when oscillating)."""
    rng = np.random.default_rng(seed)
    cells, shapes, slopes = [], [], []
    for row in range(rows):
        shape = SHAPES[row % 3]
        steps = np.arange(rng.integers(10, 41))
        slope = 0.0
        if shape == "oscillating":
            period = rng.uniform(3, 8)
            values = rng.uniform(1, 2) * np.sin(2 * np.pi * steps / period + rng.uniform(0, 6.3))
        else:
            slope = rng.uniform(0.1, 0.5) * (1 if shape == "rising" else -1)
            values = slope * steps
        values = values + rng.normal(0, 1) + rng.normal(0, 0.2, len(steps))
        text = [f"{v:.3f}" for v in values]
        # every written form: spaces, commas, semicolons, a bracketed list
        form = row % 4
        cells.append(
            " ".join(text)
            if form == 0
            else ",".join(text)
            if form == 1
            else "; ".join(text)
            if form == 2
            else "[" + ", ".join(text) + "]"
        )
        shapes.append(shape)
        slopes.append(round(slope, 4))
    return pd.DataFrame({"series": cells, "shape": shapes, "slope": slopes})


def config(source: Path, output: dict[str, Any], encoder: str | None) -> dict[str, Any]:
    """One sequence input (`encoder` None: the default, lstm), 15 epochs of a small MLP."""
    series: dict[str, Any] = {"name": "series", "type": "sequence"}
    if encoder is not None:
        series["encoder"] = {"kind": encoder, "hidden": 32}
    return {
        "name": "time-series",
        "seed": 0,
        "data": {"source": str(source), "split": {"val": 0.15, "test": 0.15}},
        "inputs": [series],
        "outputs": [output],
        "model": {"arch": "mlp", "hidden": [32], "dropout": 0.0},
        "train": {
            "epochs": 15,
            "batch_size": 32,
            "optimizer": {"name": "adam", "lr": 0.005},
            "early_stop": None,
        },
    }


@pytest.fixture(scope="module")
def table_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("series") / "series.csv"
    series_table().to_csv(path, index=False)
    return path


def test_sequence_input_classifies_the_shape_of_a_series(table_csv: Path, tmp_path: Path) -> None:
    output = {"name": "shape", "type": "category"}
    run = mg.train(config(table_csv, output, "cnn"), output_dir=tmp_path / "run")
    assert run.metrics["test"]["accuracy"] > 0.9, run.metrics["test"]
    rows = series_table(rows=30, seed=1)
    predicted = mg.load(tmp_path / "run").predict(rows.drop(columns=["shape", "slope"]))
    assert (predicted["shape"] == rows["shape"]).mean() > 0.8


def test_sequence_input_regresses_the_slope_of_a_series(table_csv: Path, tmp_path: Path) -> None:
    output = {"name": "slope", "type": "number"}
    run = mg.train(config(table_csv, output, None), output_dir=tmp_path / "run")
    assert run.metrics["test"]["r2"] > 0.8, run.metrics["test"]
