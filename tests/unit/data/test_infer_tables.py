"""`megalith init` on mixed tables: name lists become sets, heavy tails get a log transform, and
the model settings that won on mixed tables are written with their reasons."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from megalith.config import validate_config
from megalith.data.infer import infer_config
from megalith.data.infer_tables import is_heavy_tailed, is_name_list
from megalith.data.sources import Table

ROWS = 400


def _mixed(rows: int = ROWS) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    packages = ["numpy", "pandas", "torch", "rich", "pydantic", "scipy", "typer", "yaml"]
    return pd.DataFrame(
        {
            "summary": [
                f"a tool for the {w} of data, version {i}"
                for i, w in enumerate(rng.choice(["cleaning", "plotting", "loading"], rows))
            ],
            "requires": [" ".join(rng.choice(packages, rng.integers(1, 4))) for _ in range(rows)],
            "size_kb": np.exp(rng.normal(4, 2.5, rows)).round(1),
            "files": rng.integers(1, 128, rows),
            "licence": rng.choice(["mit", "bsd", "apache", "gpl", "mpl"], rows),
            "topic": rng.choice(["science", "web", "tools"], rows),
        }
    )


def test_name_lists_are_sets_and_prose_is_not() -> None:
    frame = _mixed()
    assert is_name_list(frame["requires"])
    assert is_name_list(pd.Series(["red|green|blue", "green|blue", "red|cyan", "blue"] * 20))
    assert not is_name_list(frame["summary"])  # prose: stop words
    assert not is_name_list(frame["licence"])  # one name per cell: a category


def test_heavy_tails_are_told_from_ordinary_spreads() -> None:
    frame = _mixed()
    assert is_heavy_tailed(frame["size_kb"])
    assert not is_heavy_tailed(frame["files"])  # uniform 1..127
    assert not is_heavy_tailed(pd.Series(np.random.default_rng(1).normal(0, 1e6, ROWS)))


def test_init_writes_the_mixed_table_config_with_its_reasons() -> None:
    inference = infer_config(Table(_mixed(), Path("data"), "t.csv"), "topic", source="t.csv")
    types = {f["name"]: (f["type"], f.get("transform")) for f in inference.config["inputs"]}
    assert types["requires"] == ("set", None)
    assert types["size_kb"] == ("number", "log")
    assert types["files"] == ("number", None)
    assert types["summary"][0] == "text"
    notes = " ".join(inference.notices)
    assert "'requires' holds lists of names" in notes and "'size_kb' is heavy-tailed" in notes
    validate_config(inference.config)  # what init writes is a valid config


def test_init_writes_the_mixed_table_model_and_says_why() -> None:
    inference = infer_config(Table(_mixed(), Path("data"), "t.csv"), "topic", source="t.csv")
    model = inference.config["model"]
    assert model["modality_dropout"] > 0 and model["hidden"] == []
    assert inference.config["train"]["optimizer"]["weight_decay"] >= 0.1
    assert any("mixed table" in notice for notice in inference.notices)
    numbers_only = _mixed()[["size_kb", "files", "topic"]]
    plain = infer_config(Table(numbers_only, Path("data"), "t.csv"), "topic", source="t.csv")
    assert "modality_dropout" not in plain.config["model"]  # not a mixed table: as before
