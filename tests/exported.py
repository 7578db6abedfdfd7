"""A tiny trained run with every output type, for the export and runtime tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from conftest import make_table

import megalith as mg


def outputs_table(rows: int = 300, seed: int = 0) -> pd.DataFrame:
    """make_table plus a binary target ('big') and a number target ('score')."""
    frame = make_table(rows=rows, seed=seed)
    frame["big"] = np.where(frame["size"] > 10, "yes", "no")
    frame["score"] = (frame["size"] * 2 + (frame["color"] == "red") * 3).round(3)
    return frame


def train_tiny_run(folder: Path, epochs: int = 3, threshold: float = 0.3) -> mg.Run:
    """An MLP on a number, a category and a binary input with a category, a binary (at
    `threshold`) and a number output, trained for a few epochs."""
    folder.mkdir(parents=True, exist_ok=True)
    outputs_table().to_csv(folder / "table.csv", index=False)
    config = {
        "name": "tiny",
        "data": {"source": str(folder / "table.csv"), "split": {"val": 0.1, "test": 0.2}},
        "inputs": [
            {"name": "size", "type": "number"},
            {"name": "color", "type": "category"},
            {"name": "member", "type": "binary"},
        ],
        "outputs": [
            {"name": "label", "type": "category"},
            {"name": "big", "type": "binary", "threshold": threshold},
            {"name": "score", "type": "number"},
        ],
        "model": {"arch": "mlp", "hidden": [16]},
        "train": {"epochs": epochs, "batch_size": 32},
    }
    mg.train(config, output_dir=folder / "run")
    return mg.load(folder / "run")
