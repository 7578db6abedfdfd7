"""`megalith init` on time series: columns of number sequences are typed as `sequence`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from megalith.config import validate_config
from megalith.data.infer import Inference, infer_config
from megalith.data.sources import Table

ROWS = 40


def _infer(frame: pd.DataFrame) -> Inference:
    table = Table(frame, Path("data"), "data/series.csv")
    return infer_config(table, "label", source="data/series.csv")


def _types(inference: Inference) -> dict[str, str]:
    return {f["name"]: f["type"] for f in inference.config["inputs"]}


def _series(rows: int = ROWS) -> list[list[float]]:
    rng = np.random.default_rng(0)
    return [rng.normal(0, 1, rng.integers(3, 12)).round(2).tolist() for _ in range(rows)]


@pytest.mark.parametrize(
    "write",
    [
        lambda s: " ".join(map(str, s)),
        lambda s: ",".join(map(str, s)),
        lambda s: "; ".join(map(str, s)),
        lambda s: str(s),  # "[0.12, -1.5, ...]"
        lambda s: s,  # a list, as JSONL gives
        lambda s: np.array(s),  # an array, as Parquet gives
    ],
    ids=["spaces", "commas", "semicolons", "brackets", "list", "array"],
)
def test_number_sequences_are_typed_sequence(write: object) -> None:
    cells = [write(s) for s in _series()]  # type: ignore[operator]
    cells[5] = None  # a missing cell: an empty sequence
    frame = pd.DataFrame({"signal": cells, "label": ["up", "down"] * (ROWS // 2)})
    inference = _infer(frame)
    assert _types(inference) == {"signal": "sequence"}
    assert any("'signal' holds sequences of numbers" in n for n in inference.notices)
    assert any("'signal': 1 missing cells, read as empty sequences" in n for n in inference.notices)
    validate_config(inference.config)


def _with_other_columns(column: str, cells: list[object]) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    labels = ["up", "down"] * (ROWS // 2)
    return pd.DataFrame({column: cells, "x": rng.normal(0, 1, ROWS), "label": labels})


@pytest.mark.parametrize(
    "cells",
    [
        [f"{i + 1},{i + 100:03d},{i * 7 % 1000:03d}" for i in range(ROWS)],  # 1,234,567
        [f"{i} {i + 1}" for i in range(ROWS)],  # two numbers: not a series
        [f"v{i} 2 3" for i in range(ROWS)],  # not all numbers
    ],
    ids=["thousands separators", "pairs", "words"],
)
def test_other_strings_are_not_sequences(cells: list[object]) -> None:
    inference = _infer(_with_other_columns("code", cells))
    assert _types(inference).get("code") != "sequence"
    assert not any("sequences of numbers" in n for n in inference.notices)


def test_lists_of_words_are_still_dropped() -> None:
    inference = _infer(_with_other_columns("tags", [["red", "big", "old"]] * ROWS))
    assert _types(inference) == {"x": "number"}
    assert any("'tags': its cells hold lists or arrays" in n for n in inference.notices)
