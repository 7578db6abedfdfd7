"""A bundle reads new CSV files the way its run read its data: the separator and decimal mark
recorded at training, not guessed again from a few rows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import megalith as mg
from megalith.runtime import load_bundle


@pytest.mark.slow  # a short training run and an export
def test_a_bundle_reads_semicolons_and_decimal_commas_as_its_run(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    size = rng.normal(10, 3, 200).round(2)
    frame = pd.DataFrame({"size": size, "label": np.where(size > 10, "big", "small")})
    frame.to_csv(tmp_path / "train.csv", sep=";", decimal=",", index=False)
    config = {
        "data": {"source": str(tmp_path / "train.csv")},
        "inputs": [{"name": "size", "type": "number"}],
        "outputs": [{"name": "label", "type": "category"}],
        "model": {"arch": "mlp", "hidden": [8]},
        "train": {"epochs": 2, "batch_size": 32},
    }
    run = mg.train(config, output_dir=tmp_path / "run")
    bundle = run.export(tmp_path / "bundle")
    table = json.loads((bundle / "bundle.json").read_text())["table"]
    assert table == {"delimiter": ";", "decimal": ","}
    (tmp_path / "new.csv").write_text("size\n12,5\n7,25\n", encoding="utf-8")  # no ; to sniff
    found = load_bundle(bundle).predict(tmp_path / "new.csv")
    expected = run.predict(pd.DataFrame({"size": [12.5, 7.25]}))
    assert list(found.columns) == list(expected.columns)
    probabilities = [c for c in expected.columns if "_prob_" in c]
    assert (found[probabilities] - expected[probabilities]).abs().to_numpy().max() <= 1e-4
