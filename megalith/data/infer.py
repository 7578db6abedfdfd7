"""Inferring a working config from a table: the engine behind `megalith init DATA --target COL`.

Each column gets a type from its values (and sometimes its name); every decision a user might
want to undo (a dropped column, how missing cells are filled) is reported as a notice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from megalith.data.builtin import BUILTIN_DATASETS
from megalith.data.csvfile import unsplit_header_hint
from megalith.data.infer_audio import audio_config, audio_input
from megalith.data.infer_columns import SAMPLE, all_scalars, is_number, typed_inputs
from megalith.data.infer_image import apply_image_defaults
from megalith.data.infer_speech import looks_like_transcripts, speech_config
from megalith.data.infer_tables import mixed_table_settings, refine_inputs
from megalith.data.sources import Table
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


_MAX_CLASSES = 50
"""An integer target with more distinct values than this is regressed, not classified."""
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
        inputs = typed_inputs(frame, others, target, origin, notices)
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
    if not all_scalars(present):
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
    if not is_number(values):
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
        if column == target or is_number(values) or values.isna().any():
            continue
        if not all_scalars(values.head(SAMPLE)):
            continue
        names = values.map(split_name)
        if names.notna().all() and names.nunique() >= 2 and (names == "train").any():
            notices.append(f"column '{column}' says train / val / test per row: used as data.split")
            return str(column)
    return None
