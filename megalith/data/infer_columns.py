"""What type a table's column is, from its values (and sometimes its name): the column
guessing behind `megalith init` (numbers, binaries, categories, text, sets, number sequences,
image and audio paths; IDs, dates and constants dropped with a notice).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from megalith.data.infer_audio import is_audio_path
from megalith.data.infer_tables import refine_inputs
from megalith.data.sources import IMAGE_SUFFIXES
from megalith.errors import DataError

_ID_NAME = re.compile(r"(^|[^a-z0-9])(id|uuid|guid|key|index|idx|pk)$|^unnamed: ?\d+$", re.I)
_CAMEL_ID = re.compile(r"[a-z0-9](Id|ID|Uuid|Key)$")
_DATE = re.compile(
    r"^\d{4}-\d{1,2}-\d{1,2}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$"
    r"|^\d{1,2}/\d{1,2}/\d{2,4}( \d{1,2}:\d{2}(:\d{2})?)?$"
)
_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_NUMBER_SEQUENCE = re.compile(
    rf"^[\[(]?\s*{_NUMBER}(?:(?:\s*[,;]\s*|\s+){_NUMBER}){{2,}}\s*[\])]?$"
)
"""Three or more numbers separated by spaces, commas or semicolons, maybe in brackets."""
_THOUSANDS = re.compile(r"^[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
"""One number written with thousands separators (1,234,567), not a sequence."""
_MIN_ROWS_FOR_ID_GUESS = 20
"""Below this many rows, all-distinct values say little: only an ID-like name drops a column."""
SAMPLE = 2000
"""Cells examined for the share of image paths, dates and words."""
_MOSTLY = 0.9
_FILLED = {
    "number": "filled with the train mean",
    "binary": "filled with the most frequent train value",
    "category": "read as an 'unknown' category",
    "text": "read as empty text",
    "sequence": "read as empty sequences",
    "set": "read as an empty set",
    "image": "an error when training: fill in the paths or drop those rows",
    "audio": "an error when training: fill in the paths or drop those rows",
}


def typed_inputs(
    frame: pd.DataFrame, columns: list[Any], target: str, origin: str, notices: list[str]
) -> list[dict[str, Any]]:
    """Input features for `columns` of a table predicting `target`; dropped columns, missing
    cells and retypings are told in `notices`.

    Raises:
        DataError: no column is left to predict `target` from.
    """
    inputs: list[dict[str, Any]] = []
    reasons: list[str] = []
    target_cells = frame[target].astype(object)  # once, not per column: wide tables stay fast
    missing_counts = frame[columns].isna().sum()
    for column in columns:
        kind, notice = _input_type(frame[column], target_cells)
        if notice:
            (notices if kind else reasons).append(notice)
        if kind is None:
            continue
        inputs.append({"name": str(column), "type": kind})
        missing = int(missing_counts[column])
        if missing:
            notices.append(f"column '{column}': {missing} missing cells, {_FILLED[kind]}")
    notices.extend(reasons)
    if not inputs:
        why = "; ".join(reasons) or "the table has no other column"
        raise DataError(
            f"{origin}: no column is left to predict '{target}' from ({why}); add input columns."
        )
    return inputs


def infer_inputs(
    frame: pd.DataFrame, columns: Sequence[Any], notices: list[str]
) -> list[dict[str, Any]]:
    """Input features for `columns` typed as `init` types a table's inputs, without a target
    (a recommender's side tables); dropped columns and retypings are told in `notices`."""
    nothing = pd.Series([None] * len(frame), index=frame.index, dtype=object, name="")
    inputs: list[dict[str, Any]] = []
    for column in columns:
        kind, notice = _input_type(frame[column], nothing)
        if notice:
            notices.append(notice)
        if kind is not None:
            inputs.append({"name": str(column), "type": kind})
    refine_inputs(frame, inputs, notices)
    return inputs


def _input_type(values: pd.Series, target: pd.Series) -> tuple[str | None, str]:
    """(type or None to drop the column, a notice or ''); `target` as object cells."""
    column = str(values.name)
    present = values.dropna()
    if len(present) == 0:
        return None, f"dropped column '{column}': every cell is missing"
    if not all_scalars(present):
        if _share(present.head(SAMPLE), _is_number_list) >= _MOSTLY:
            return "sequence", _sequence_notice(column)
        return None, f"dropped column '{column}': its cells hold lists or arrays"
    if values.astype(object).equals(target):
        return None, f"dropped column '{column}': it repeats the target '{target.name}'"
    distinct = int(present.nunique())
    if distinct <= 1:
        return None, f"dropped column '{column}': every value is {present.iloc[0]!r} (constant)"
    if pd.api.types.is_bool_dtype(values) or (distinct == 2 and is_number(values)):
        return "binary", ""
    if is_number(values):
        return _numeric_type(present, column, distinct)
    if pd.api.types.is_datetime64_any_dtype(values):
        return "category", _date_notice(column)
    return _string_type(present.astype(str), column, distinct)


def _numeric_type(present: pd.Series, column: str, distinct: int) -> tuple[str | None, str]:
    integers = bool(np.all(np.mod(present.to_numpy(dtype=np.float64), 1) == 0))
    if integers and distinct == len(present):
        monotonic = present.is_monotonic_increasing or present.is_monotonic_decreasing
        if _looks_like_id_name(column) or (monotonic and len(present) >= _MIN_ROWS_FOR_ID_GUESS):
            return None, f"dropped column '{column}': every value is unique (looks like an ID)"
    if integers and _looks_like_id_name(column):
        return "category", (
            f"column '{column}' looks like an identifier with repeated values: typed as category"
        )
    return "number", ""


def _string_type(strings: pd.Series, column: str, distinct: int) -> tuple[str | None, str]:
    sample = strings.sample(SAMPLE, random_state=0) if len(strings) > SAMPLE else strings
    if _share(sample, _is_image_path) >= _MOSTLY:
        return "image", ""
    if _share(sample, is_audio_path) >= _MOSTLY:
        return "audio", ""
    if _share(sample, _is_number_sequence) >= _MOSTLY:
        return "sequence", _sequence_notice(column)
    if distinct == 2:
        return "binary", ""
    if _share(sample, lambda s: _DATE.match(s.strip()) is not None) >= _MOSTLY:
        return "category", _date_notice(column)
    if distinct == len(strings) and _looks_like_id_strings(strings, column):
        return None, f"dropped column '{column}': every value is unique (looks like an ID)"
    numbers = pd.to_numeric(sample, errors="coerce")
    if numbers.notna().all():  # numbers as text: the reader saw leading zeros ('01067')
        return "category", (
            f"column '{column}' holds codes written in digits (such as {_zero_led(sample)!r}): "
            "typed as category and kept as text, leading zeros included; change it to number "
            "if the values are quantities"
        )
    if numbers.notna().mean() >= _MOSTLY:
        bad = sample[numbers.isna()].iloc[0]
        return "category", (
            f"column '{column}' is mostly numbers but holds text such as {bad!r}: typed as "
            "category; clean those cells to use it as a number"
        )
    words = sample.map(lambda s: len(s.split())).mean()
    long = words >= 4 or sample.str.len().mean() >= 30
    if long and distinct > 0.5 * len(strings):
        return "text", ""
    return "category", ""


def _zero_led(strings: pd.Series) -> str:
    """The first cell that starts with a zero digit followed by another digit, else the first."""
    led = strings[strings.str.strip().str.match(r"^[-+]?0\d")]
    return str(led.iloc[0] if len(led) else strings.iloc[0])


def _looks_like_id_name(column: str) -> bool:
    return bool(_ID_NAME.search(column.strip()) or _CAMEL_ID.search(column.strip()))


def _looks_like_id_strings(strings: pd.Series, column: str) -> bool:
    """All-distinct strings named like an ID, or short single tokens in a big enough table."""
    if _looks_like_id_name(column):
        return True
    short_tokens = bool((~strings.str.contains(r"\s") & (strings.str.len() <= 40)).all())
    return short_tokens and len(strings) >= _MIN_ROWS_FOR_ID_GUESS


def _date_notice(column: str) -> str:
    return (
        f"column '{column}' looks like dates: typed as category (each date a class); "
        "consider deriving numbers such as year, month or day of week instead"
    )


def _sequence_notice(column: str) -> str:
    return (
        f"column '{column}' holds sequences of numbers: typed as sequence (a time series); "
        "change the type if a cell is something else"
    )


def _is_number_sequence(text: str) -> bool:
    text = text.strip()
    return _NUMBER_SEQUENCE.match(text) is not None and _THOUSANDS.match(text) is None


def _is_number_list(value: Any) -> bool:
    if not isinstance(value, (list, tuple, np.ndarray)) or len(value) < 3:
        return False
    return all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in value)


def _is_image_path(text: str) -> bool:
    return Path(text.strip()).suffix.lower() in IMAGE_SUFFIXES


def _share(sample: pd.Series, test: Any) -> float:
    return float(np.mean([bool(test(s)) for s in sample])) if len(sample) else 0.0


def is_number(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def all_scalars(values: pd.Series) -> bool:
    if values.dtype != object:
        return True
    return not any(isinstance(v, (list, tuple, dict, set, np.ndarray)) for v in values)
