"""Fusion on mixed tables: a label only the combination of two columns decides, learned end to
end; a transformer-combined run with a set column, log numbers and modality dropout predicts the
same through predict and the exported bundle, and degrades gracefully with a column blanked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import megalith as mg

FILLER = [f"w{i}" for i in range(30)]


def xor_table(rows: int, seed: int) -> pd.DataFrame:
    """label = (note says 'alpha') XOR (shop is in the even group): each column alone is 50%."""
    rng = np.random.default_rng(seed)
    alpha = rng.random(rows) < 0.5
    shop = rng.integers(0, 20, rows)
    notes = [" ".join([*rng.choice(FILLER, 3), "alpha" if a else "beta"]) for a in alpha]
    label = alpha ^ (shop % 2 == 0)
    size = np.exp(rng.normal(4, 2, rows)).round(1)  # heavy-tailed, unrelated to the label
    return pd.DataFrame(
        {
            "note": notes,
            "shop": [f"s{s}" for s in shop],
            "size": size,
            "label": np.where(label, "yes", "no"),
        }
    )


def _config(
    source: Path, inputs: list[dict[str, Any]], lr: float = 0.01, **model: Any
) -> dict[str, Any]:
    return {
        "name": "xor",
        "data": {"source": str(source), "split": {"val": 0.15, "test": 0.15}},
        "inputs": inputs,
        "outputs": [{"name": "label", "type": "binary"}],
        "model": {"arch": "mlp", "hidden": [32], "dropout": 0.0, **model},
        "train": {"epochs": 12, "batch_size": 32, "optimizer": {"name": "adamw", "lr": lr}},
    }


NOTE = {"name": "note", "type": "set"}
SHOP = {"name": "shop", "type": "category"}


@pytest.mark.slow  # three small trainings
def test_fusion_learns_what_no_single_column_can(tmp_path: Path) -> None:
    xor_table(800, seed=0).to_csv(tmp_path / "xor.csv", index=False)
    accuracy = {}
    for name, inputs in (("both", [NOTE, SHOP]), ("note", [NOTE]), ("shop", [SHOP])):
        run = mg.train(_config(tmp_path / "xor.csv", inputs), output_dir=tmp_path / name)
        accuracy[name] = run.metrics["test"]["accuracy"]
    assert accuracy["both"] >= 0.95, accuracy
    assert accuracy["note"] <= 0.65 and accuracy["shop"] <= 0.65, accuracy


@pytest.mark.slow  # a training and an ONNX export
def test_transformer_fusion_predicts_alike_through_the_bundle(tmp_path: Path) -> None:
    xor_table(800, seed=1).to_csv(tmp_path / "xor.csv", index=False)
    inputs = [NOTE, SHOP, {"name": "size", "type": "number", "transform": "quantile"}]
    model = {"combiner": "transformer", "token_dim": 16, "combiner_heads": 2}
    config = _config(tmp_path / "xor.csv", inputs, lr=0.003, modality_dropout=0.1, **model)
    run = mg.train(config, output_dir=tmp_path / "run")
    assert run.metrics["test"]["accuracy"] >= 0.9
    rows = xor_table(200, seed=2)
    predicted = run.predict(rows.drop(columns=["label"]))
    assert (predicted["label"] == rows["label"]).mean() >= 0.9
    bundle = mg.load(tmp_path / "run").export(tmp_path / "bundle")
    from megalith.runtime import load_bundle

    served = load_bundle(bundle).predict(rows.drop(columns=["label"]))
    np.testing.assert_allclose(
        served["label_prob_yes"], predicted["label_prob_yes"], rtol=1e-4, atol=1e-5
    )
    blank = rows.drop(columns=["label"]).assign(size=np.nan)  # size carries no signal
    assert (run.predict(blank)["label"] == rows["label"]).mean() >= 0.85
