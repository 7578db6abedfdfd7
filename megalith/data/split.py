"""Splitting a table into train / val / test: by seeded (stratified) fractions, or by a column."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from megalith.configbase import ConfigModel
from megalith.data.rows import describe_rows, describe_value
from megalith.errors import DataError, did_you_mean


class SplitConfig(ConfigModel):
    """How rows are divided into train, val and test."""

    val: float = Field(0.1, ge=0, lt=1)
    """Fraction of rows for validation (early stopping, model selection); with a split column
    that marks no val rows, the fraction of its train rows moved to val."""
    test: float = Field(0.1, ge=0, lt=1)
    """Fraction of rows for the final test metrics in eval.json; with a split column that marks
    no test rows, the fraction of its train rows moved to test."""
    seed: int | None = None
    """Seed of the shuffle; by default the config's top-level seed."""
    stratify: bool = True
    """Keep class proportions equal across splits when the first output is a category or binary."""
    column: str | None = None
    """Name of a column holding 'train' / 'val' / 'test' per row; the fractions then only
    carve a split the column lacks out of its train rows (e.g. {column: split, val: 0.1})."""

    @model_validator(mode="after")
    def _fractions_leave_train_rows(self) -> SplitConfig:
        if self.column is None and self.val + self.test >= 1:
            raise ValueError(f"val + test must be < 1 (got {self.val} + {self.test})")
        return self


SPLITS = ("train", "val", "test")
SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "validation": "val",
    "valid": "val",
    "dev": "val",
    "test": "test",
    "testing": "test",
}
"""Values a split column may hold (compared lower-cased, spaces trimmed) -> the split they mean."""
_MIN_STRATIFIED = 3
"""Classes with fewer rows than this all go to train: they cannot be shared out."""


def split_name(value: Any) -> str | None:
    """'Validation ' -> 'val'; None for a missing cell or a value that names no split."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    return SPLIT_NAMES.get(str(value).strip().lower())


def split_table(
    frame: pd.DataFrame,
    config: SplitConfig,
    *,
    seed: int,
    stratify_by: str | None = None,
    origin: str = "data",
) -> dict[str, pd.DataFrame]:
    """Divide `frame` into train / val / test frames that keep the original index labels.

    By fraction, rows are shuffled with `config.seed` (else `seed`) and, when `stratify_by` is
    given and `config.stratify` is on, each class of that column keeps its proportion. By
    column, each row goes where its value says and keeps the table's order; a val or test split
    the column lacks is carved out of its train rows by `config.val` / `config.test` (as
    fractions of the train rows, stratified the same way).

    Raises:
        DataError: a missing or malformed split column, or a split left empty.
    """
    rng = np.random.default_rng(config.seed if config.seed is not None else seed)
    stratify = stratify_by if config.stratify else None
    if stratify is not None and stratify not in frame.columns:
        raise DataError(
            f"{origin}: cannot stratify the split by column '{stratify}': no such column"
            f"{did_you_mean(stratify, map(str, frame.columns))}."
        )
    if config.column is not None:
        parts = _split_by_column(frame, config, origin)
        return _carve_missing_splits(parts, config, rng, stratify, origin)
    return _split_by_fraction(frame, config, rng, stratify, origin)


def split_notes(frame: pd.DataFrame, config: SplitConfig) -> list[str]:
    """Sentences for people about splits carved out of a split column's train rows."""
    if config.column is None or config.column not in frame.columns:
        return []
    marked = set(frame[config.column].map(split_name).dropna())
    return [
        f"split column '{config.column}' marks no {name} rows: data.split.{name}="
        f"{getattr(config, name)} of its train rows are used as {name}"
        for name in ("val", "test")
        if name not in marked and getattr(config, name) > 0
    ]


def _rounded(count: float) -> int:
    return math.floor(count + 0.5)  # round half up: 179.7 -> 180, 0.5 -> 1


def _split_by_fraction(
    frame: pd.DataFrame,
    config: SplitConfig,
    rng: np.random.Generator,
    stratify: str | None,
    origin: str,
) -> dict[str, pd.DataFrame]:
    """Rank rows so that every class spreads evenly over the ranking, then cut it into test/val."""
    rows = len(frame)
    codes = _class_codes(frame, stratify)
    sizes = np.bincount(codes, minlength=1)
    shuffled = rng.permutation(rows)
    grouped = shuffled[np.argsort(codes[shuffled], kind="stable")]  # by class, shuffled within
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    place = np.arange(rows) - starts[codes[grouped]]
    spread = np.empty(rows)
    spread[grouped] = (place + 0.5) / sizes[codes[grouped]]  # 0..1 within each class
    shareable = sizes[codes] >= _MIN_STRATIFIED if stratify is not None else np.ones(rows, bool)
    candidates = np.flatnonzero(shareable)
    ranked = candidates[np.lexsort((rng.random(len(candidates)), spread[candidates]))]
    n_test, n_val = _rounded(rows * config.test), _rounded(rows * config.val)
    positions = {
        "test": ranked[:n_test],
        "val": ranked[n_test : n_test + n_val],
        "train": np.concatenate([ranked[n_test + n_val :], np.flatnonzero(~shareable)]),
    }
    _check_fraction_splits(positions, config, rows, stratify, origin)
    return {name: frame.iloc[rng.permutation(positions[name])] for name in SPLITS}


def _class_codes(frame: pd.DataFrame, column: str | None) -> np.ndarray:
    """An int code per row for its class; missing values form a class of their own."""
    if column is None:
        return np.zeros(len(frame), dtype=np.int64)
    codes, _ = pd.factorize(frame[column], use_na_sentinel=False)
    return np.asarray(codes, dtype=np.int64)


def _check_fraction_splits(
    positions: dict[str, np.ndarray],
    config: SplitConfig,
    rows: int,
    stratify: str | None,
    origin: str,
) -> None:
    if len(positions["train"]) == 0:
        raise DataError(
            f"{origin}: data.split val={config.val} + test={config.test} of {rows} rows leaves "
            "no train rows: add rows or lower the fractions."
        )
    for name in ("val", "test"):
        fraction = getattr(config, name)
        if fraction > 0 and len(positions[name]) == 0:
            why = ""
            if stratify is not None and _rounded(rows * fraction) > 0:
                why = (
                    f" (classes of column '{stratify}' with fewer than {_MIN_STRATIFIED} rows "
                    "all go to train)"
                )
            raise DataError(
                f"{origin}: data.split.{name}={fraction} of {rows} rows gives 0 rows{why}: add "
                f"rows or raise the fraction, or set data.split.{name}: 0 to go without."
            )


def _carve_missing_splits(
    parts: dict[str, pd.DataFrame],
    config: SplitConfig,
    rng: np.random.Generator,
    stratify: str | None,
    origin: str,
) -> dict[str, pd.DataFrame]:
    """Move fractions of the train rows to the splits the column left empty (table order kept)."""
    lacking = [name for name in ("val", "test") if len(parts[name]) == 0]
    if not lacking:
        return parts
    carve = SplitConfig(
        val=config.val if "val" in lacking else 0.0,
        test=config.test if "test" in lacking else 0.0,
        stratify=config.stratify,
    )
    train = parts["train"]
    where = f"{origin} (train rows of split column '{config.column}')"
    carved = _split_by_fraction(train, carve, rng, stratify, where)
    ordered = {name: train[train.index.isin(carved[name].index)] for name in ("train", *lacking)}
    return {**parts, **ordered}


def _split_by_column(
    frame: pd.DataFrame, config: SplitConfig, origin: str
) -> dict[str, pd.DataFrame]:
    column = str(config.column)
    if column not in frame.columns:
        columns = [str(c) for c in frame.columns]
        raise DataError(
            f"{origin}: data.split names column '{column}', which is not in the table"
            f"{did_you_mean(column, columns)}; columns: {', '.join(columns[:20])}."
        )
    names = frame[column].map(split_name)
    unknown = names.isna().to_numpy()
    if unknown.any():
        bad = pd.unique(frame[column][unknown].astype(object))
        shown = ", ".join(describe_value(v) for v in bad[:5])
        raise DataError(
            f"{origin}: split column '{column}' holds {shown}, which name no split "
            f"({describe_rows(frame.index[unknown])}); use train, val (or validation, valid, "
            "dev) or test."
        )
    parts = {name: frame[(names == name).to_numpy()] for name in SPLITS}
    for name, part in parts.items():
        if len(part) == 0 and (name == "train" or getattr(config, name) == 0):
            carve = (
                f", or set data.split.{name} (e.g. 0.1) to use that fraction of the train rows"
                if name != "train"
                else ""
            )
            raise DataError(
                f"{origin}: split column '{column}' has no '{name}' rows; mark some rows "
                f"'{name}'{carve}."
            )
    return parts
