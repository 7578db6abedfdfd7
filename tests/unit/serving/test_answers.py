"""Predictions as JSON rows: the values a predictions frame holds, missing and infinite as null."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from megalith.serving.answers import json_rows


def _frame_records(columns: dict[str, object]) -> list[dict[str, object]]:
    """What the server answered before: the DataFrame's records, NaN as None."""
    frame = pd.DataFrame(columns)
    return frame.astype(object).where(frame.notna(), None).to_dict(orient="records")


def test_rows_hold_the_frames_python_values_with_gaps_as_none() -> None:
    columns = {  # as decode gives them: label lists and float64 probabilities
        "label": ["a", None, "c"],
        "label_prob_a": np.array([0.1, np.nan, 0.7]),
        "member": [True, False, True],
        "count": np.array([1, 2, 3], dtype=np.int64),
        "score": np.array([0.5, 0.25, 2.0], dtype=np.float32),
        "code": pd.Series(["007", "010", pd.NA], dtype="string"),
    }
    rows = json_rows(columns)
    assert rows == _frame_records(columns)
    assert [type(value) for value in rows[0].values()] == [str, float, bool, int, float, str]
    assert rows[1]["label"] is None and rows[1]["label_prob_a"] is None and rows[2]["code"] is None


def test_infinities_become_null_and_the_rows_render_as_json() -> None:
    rows = json_rows({"value": np.array([np.inf, -np.inf, 1.5])})
    assert rows == [{"value": None}, {"value": None}, {"value": 1.5}]
    assert json.dumps(rows, allow_nan=False) == '[{"value": null}, {"value": null}, {"value": 1.5}]'


def test_no_rows_and_columns_of_different_lengths() -> None:
    assert json_rows({"label": [], "label_prob_a": np.zeros(0)}) == []
    assert json_rows({7: [1]}) == [{"7": 1}]
    with pytest.raises(ValueError):
        json_rows({"label": ["a", "b"], "label_prob_a": np.zeros(1)})
