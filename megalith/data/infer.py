"""Inferring a working config from a table: the engine behind `megalith init DATA --target COL`.

Each column gets a type from its values (and sometimes its name); every decision a user might
want to undo (a dropped column, how missing cells are filled) is reported as a notice.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from megalith.data.builtin import BUILTIN_DATASETS
from megalith.data.csvfile import unsplit_header_hint
from megalith.data.infer_audio import audio_config, audio_input, is_audio_path
from megalith.data.infer_image import apply_image_defaults
from megalith.data.infer_speech import looks_like_transcripts, speech_config
from megalith.data.infer_tables import mixed_table_settings, refine_inputs
from megalith.data.sources import IMAGE_SUFFIXES, Table
from megalith.data.split import split_name
from megalith.errors import DataError, did_you_mean


@dataclass
class Inference:
    """What `infer_config` decided."""

    config: dict[str, Any]
    """A complete config, ready for yaml.safe_dump."""
    notices: list[str]
    """Sentences for people: what was dropped, filled or guessed, and why."""
    summary: str = ""
    """One line about the data, for the header of the rendered config."""


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
_MAX_CLASSES = 50
"""An integer target with more distinct values than this is regressed, not classified."""
_MIN_ROWS_FOR_ID_GUESS = 20
"""Below this many rows, all-distinct values say little: only an ID-like name drops a column."""
_SAMPLE = 2000
"""Cells examined for the share of image paths, dates and words."""
_MOSTLY = 0.9
_TEXT_INPUT: dict[str, Any] = {
    "tokenizer": "word",
    "ngrams": 2,
    "vocab_size": 50_000,
    "embedding_dim": 256,
}
_TEXT_OPTIMIZER: dict[str, Any] = {"name": "adamw", "lr": 0.01, "weight_decay": 0.1}
"""For text, a wide bag of word and word-pair embeddings straight into the heads (no hidden
layers), with a high learning rate and strong weight decay: on three real 16-class short-text
splits it beat TF-IDF (1-2-grams) + logistic regression by about a point, where the generic MLP
defaults fell 10+ points short and WordPiece tied (benchmarks/text_baseline.py)."""
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


def infer_config(table: Table, target: str, *, source: str, name: str | None = None) -> Inference:
    """A complete config for predicting `target` from the other columns of `table`.

    Args:
        table: the loaded rows.
        target: the column to predict.
        source: `data.source` as the config should write it.
        name: the run name; by default the file's (or dataset's) name.

    Raises:
        DataError: the target is not a column, has one value, or no input column is usable.
    """
    frame, origin = table.frame, table.origin
    _check_target(frame, target, origin)
    notices: list[str] = []
    data: dict[str, Any] = {"source": source, **_reader_settings(table, notices)}
    dataset = BUILTIN_DATASETS.get(source.removeprefix("builtin:"))
    split: dict[str, Any] = {"val": 0.1, "test": 0.1}
    if source.startswith("builtin:") and dataset is not None and dataset.target == target:
        inputs = [dict(feature) for feature in dataset.inputs]
        outputs = [dict(feature) for feature in dataset.outputs]
        arch = dataset.arch
    else:
        outputs = [{"name": target, "type": _target_type(frame[target], origin, notices)}]
        if outputs[0]["type"] == "binary":
            outputs[0].update(_rare_positive(frame[target], notices))
        split_column = _find_split_column(frame, target, notices)
        if split_column is not None:
            classes = outputs[0]["type"] != "number"
            split = _column_split(frame[split_column], classes, notices)
        others = [c for c in frame.columns if c not in (target, split_column)]
        inputs = _infer_inputs(frame, others, target, origin, notices)
        inputs = [
            audio_input(frame[f["name"]], table.base_dir, notices) if f["type"] == "audio" else f
            for f in inputs
        ]
        refine_inputs(frame, inputs, notices)  # name lists as sets, heavy tails log-scaled
        arch = "cnn" if any(f["type"] in ("image", "audio") for f in inputs) else "mlp"
    model: dict[str, Any] = {"arch": arch}
    optimizer: dict[str, Any] = {"name": "adamw", "lr": 0.001}
    for feature in inputs:
        if feature["type"] == "text" and "tokenizer" not in feature:
            feature.update(_TEXT_INPUT)
    batch_size = _batch_size(len(frame))
    if arch == "mlp" and all(feature["type"] == "text" for feature in inputs):
        model, optimizer = {"arch": "mlp", "hidden": []}, dict(_TEXT_OPTIMIZER)
        batch_size = 128 if len(frame) >= 10_000 else batch_size  # halves the time, same accuracy
    mixed = mixed_table_settings(inputs, notices) if arch == "mlp" else None
    if mixed is not None:  # text or name lists beside numbers / categories
        model, optimizer = mixed
    config = {
        "name": name or default_name(source),
        "seed": 0,
        "data": {**data, "split": split},
        "inputs": inputs,
        "outputs": outputs,
        "model": model,
        "train": {
            "epochs": 30,
            "batch_size": batch_size,
            "optimizer": optimizer,
            "early_stop": {"metric": "val/loss", "patience": 5},
        },
    }
    if not source.startswith("builtin:") and any(f["type"] == "image" for f in inputs):
        apply_image_defaults(config, frame, table.base_dir, notices)
    audio = [feature for feature in inputs if feature["type"] == "audio"]
    if audio and looks_like_transcripts(frame[target]):  # recordings and what they say
        config = speech_config(config, frame, audio[0], target, table.base_dir, notices)
    elif audio:
        config = audio_config(config, len(frame))
    summary = f"{origin}: {len(frame)} rows, {frame.shape[1]} columns"
    return Inference(config, notices, summary)


def render_config(inference: Inference) -> str:
    """The config as YAML text, after a comment header that repeats the notices."""
    header = ["# Megalith config written by `megalith init`."]
    if inference.summary:
        header.append(f"# Data: {inference.summary}.")
    header.append("# Check the input types below, then run: megalith train <this file>")
    if inference.notices:
        header.append("# Notes:")
        header += [f"#   - {notice}" for notice in inference.notices]
    body = yaml.safe_dump(
        inference.config, sort_keys=False, default_flow_style=None, allow_unicode=True
    )
    return "\n".join(header) + "\n" + body


def _check_target(frame: pd.DataFrame, target: str, origin: str) -> None:
    if target in frame.columns:
        return
    columns = [str(c) for c in frame.columns]
    unsplit = unsplit_header_hint(columns)
    if unsplit:
        raise DataError(f"{origin}: target column '{target}' is not in the table.{unsplit}")
    more = f", ... ({len(columns)} in all)" if len(columns) > 30 else ""
    shown = ", ".join(columns[:30]) + more
    raise DataError(
        f"{origin}: target column '{target}' is not in the table{did_you_mean(target, columns)}; "
        f"columns: {shown}. Pass one of them with --target."
    )


def _reader_settings(table: Table, notices: list[str]) -> dict[str, Any]:
    """data.format / delimiter / decimal for a CSV read other than comma-separated with
    decimal points, so that train and predict read it the same way."""
    dialect = table.dialect
    if dialect is None or (dialect.delimiter, dialect.decimal) == (",", "."):
        return {}
    notices.append(
        f"read as a CSV file {dialect.describe()}: data.delimiter and data.decimal record "
        "it, so that train and predict read this file and new ones the same way"
    )
    return {"format": "csv", "delimiter": dialect.delimiter, "decimal": dialect.decimal}


def _column_split(values: pd.Series, stratified: bool, notices: list[str]) -> dict[str, Any]:
    """data.split for a split column; a split it lacks is carved out of its train rows."""
    marked = set(values.map(split_name))
    split: dict[str, Any] = {"column": str(values.name)}
    how = " (stratified by the target)" if stratified else ""
    for name in ("val", "test"):
        if name not in marked:
            split[name] = 0.1
            notices.append(
                f"split column '{values.name}' marks no {name} rows: 10% of its train rows"
                f"{how} are held out as {name} (data.split.{name}: 0.1)"
            )
    return split


def _batch_size(rows: int) -> int:
    return 32 if rows < 2000 else 64 if rows < 20000 else 128


def default_name(source: str) -> str:
    """'data/my table.csv' -> 'my-table': the run name a config gets by default."""
    stem = source.removeprefix("builtin:") if source.startswith("builtin:") else Path(source).stem
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-._") or "run"


def _missing_count(values: pd.Series) -> int:
    return int(values.isna().sum())


def _rare_positive(values: pd.Series, notices: list[str]) -> dict[str, Any]:
    """`positive: VALUE` for the rarer of two values when neither reads as positive (yes, true,
    1...): F1, precision and recall then describe the class users look for, not the majority."""
    from megalith.data.features.binary import reads_as_positive

    counts = values.dropna().value_counts()
    if any(reads_as_positive(v) for v in counts.index) or counts.iloc[0] == counts.iloc[-1]:
        return {}
    rare, share = counts.index[-1], counts.iloc[-1] / counts.sum()
    notices.append(
        f"target '{values.name}': the rarer value {str(rare)!r} ({share:.1%} of rows) is the "
        "positive class (F1, precision, recall); set outputs.0.positive to choose the other"
    )
    return {"positive": str(rare)}


def _target_type(values: pd.Series, origin: str, notices: list[str]) -> str:
    """binary for two values, category for labels or few integers, else number."""
    column = str(values.name)
    present = values.dropna()
    if not _all_scalars(present):
        raise DataError(f"{origin}: target '{column}' holds lists or arrays; pick a plain column.")
    distinct = int(present.nunique())
    if distinct < 2:
        what = "is always missing" if distinct == 0 else f"has one value ({present.iloc[0]!r})"
        raise DataError(
            f"{origin}: target '{column}' {what}: there is nothing to learn; pick another column."
        )
    if _missing_count(values):
        notices.append(
            f"target '{column}': {_missing_count(values)} rows have no value; they are dropped"
        )
    if distinct == 2:
        return "binary"
    if not _is_number(values):
        if distinct > _MAX_CLASSES:
            notices.append(f"target '{column}' has {distinct} classes; expect a hard problem")
        return "category"
    integers = bool(np.all(np.mod(present.to_numpy(dtype=np.float64), 1) == 0))
    if integers and distinct <= _MAX_CLASSES and distinct <= 0.5 * len(present):
        notices.append(
            f"target '{column}' holds {distinct} integer values: typed as category "
            "(classification); change it to number for regression"
        )
        return "category"
    return "number"


def _find_split_column(frame: pd.DataFrame, target: str, notices: list[str]) -> str | None:
    """A column every cell of which says train / val / test (at least two of them)."""
    for column in frame.columns:
        values = frame[column]
        if column == target or _is_number(values) or values.isna().any():
            continue
        if not _all_scalars(values.head(_SAMPLE)):
            continue
        names = values.map(split_name)
        if names.notna().all() and names.nunique() >= 2 and (names == "train").any():
            notices.append(f"column '{column}' says train / val / test per row: used as data.split")
            return str(column)
    return None


def _infer_inputs(
    frame: pd.DataFrame, columns: list[Any], target: str, origin: str, notices: list[str]
) -> list[dict[str, Any]]:
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
    if not _all_scalars(present):
        if _share(present.head(_SAMPLE), _is_number_list) >= _MOSTLY:
            return "sequence", _sequence_notice(column)
        return None, f"dropped column '{column}': its cells hold lists or arrays"
    if values.astype(object).equals(target):
        return None, f"dropped column '{column}': it repeats the target '{target.name}'"
    distinct = int(present.nunique())
    if distinct <= 1:
        return None, f"dropped column '{column}': every value is {present.iloc[0]!r} (constant)"
    if pd.api.types.is_bool_dtype(values) or (distinct == 2 and _is_number(values)):
        return "binary", ""
    if _is_number(values):
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
    sample = strings.sample(_SAMPLE, random_state=0) if len(strings) > _SAMPLE else strings
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


def _is_number(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def _all_scalars(values: pd.Series) -> bool:
    if values.dtype != object:
        return True
    return not any(isinstance(v, (list, tuple, dict, set, np.ndarray)) for v in values)
