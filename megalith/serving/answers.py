"""Predictions as JSON rows, built from the decoded columns without a DataFrame.

Under load, turning a one-row predictions frame into records
(`frame.astype(object).where(...).to_dict(orient="records")`) took 1.9 ms with a 16-class
output, more than the ONNX forward pass, and it ran on the event loop. Here each column
becomes a list in one `tolist()`, and the rows are `zip`s of those lists.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd


def json_rows(columns: Mapping[Any, Any]) -> list[dict[str, Any]]:
    """One dict per row from columns of equal length (lists, 1-D arrays or Series, as
    `Preprocessor.decode_columns` gives them), keyed by the column names as strings.

    Values become Python scalars (numpy float64 -> float, int64 -> int, bool -> bool, str);
    NaN, NA, None and infinities become None, since JSON has no non-finite numbers: the values
    `DataFrame(columns)` holds, as `megalith predict` writes them.

    Raises:
        ValueError: the columns differ in length.
    """
    names = [str(name) for name in columns]
    lists = [[_plain(value) for value in _as_list(values)] for values in columns.values()]
    return [dict(zip(names, row, strict=True)) for row in zip(*lists, strict=True)]


def _as_list(values: Any) -> list[Any]:
    return values.tolist() if hasattr(values, "tolist") else list(values)


def _plain(value: Any) -> Any:
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
