"""Category features: a value from a set (strings or integers), looked up in a train vocabulary."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from megalith.configbase import ConfigModel
from megalith.data.arrays import as_float64, to_tensor
from megalith.data.rows import describe_rows, describe_value
from megalith.data.specs import InputSpec, OutputSpec
from megalith.errors import DataError

if TYPE_CHECKING:
    import torch


class CategoryInput(ConfigModel):
    """A categorical input column, embedded by the model."""

    name: str
    """Column name in the table."""
    type: Literal["category"] = "category"
    max_categories: int = Field(1000, gt=0)
    """Keep at most this many of the most frequent values; the rest map to 'unknown'."""
    min_count: int = Field(1, gt=0)
    """Values seen fewer times than this on train map to 'unknown'."""
    embedding_dim: int | None = Field(None, gt=0)
    """Embedding size; by default min(32, 1.6 * vocabulary_size ** 0.56) rounded."""


class CategoryOutput(ConfigModel):
    """A categorical target: multi-class classification with cross-entropy."""

    name: str
    """Column name in the table."""
    type: Literal["category"] = "category"
    weight: float = Field(1.0, gt=0)
    """Weight of this output's loss in the total loss."""
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    """Label smoothing for the cross-entropy loss."""
    class_weights: Literal["balanced"] | None = None
    """balanced: weight each class's loss by n_rows / (n_classes * its train rows), so rare
    classes count as much as common ones (imbalanced data)."""
    missing: Literal["drop", "error"] = "drop"
    """Rows whose target is missing: drop them (with a notice) or stop with an error."""


def _key(value: Any) -> Any:
    """A hashable, JSON-friendly key for a cell: Python scalars as they are, others as text."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)  # an int column with missing cells is read as float: keep its labels ints
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no inf
    if isinstance(value, (str, bool, int, float)):
        return value
    return str(value)


def _sort_key(value: Any) -> tuple[int, Any]:
    """Numbers sort numerically and before text; text sorts lexicographically."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, float(value))
    return (1, str(value))


def _counts(values: pd.Series) -> list[tuple[Any, int]]:
    """(value, count) of the non-missing cells, most frequent first, ties by value."""
    counts = values.dropna().value_counts(sort=False)
    merged: dict[Any, int] = {}
    for value, count in zip(counts.index.tolist(), counts.tolist(), strict=True):
        merged[_key(value)] = merged.get(_key(value), 0) + int(count)
    return sorted(merged.items(), key=lambda item: (-item[1], _sort_key(item[0])))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Probabilities over the last axis, computed stably (the largest logit subtracted first)."""
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def _is_missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


def _other_spelling(value: Any) -> Any:
    """The value as another reader gives it, for a value not found as it is: a text cell as CSV
    reading typed it before cells stayed text ('TRUE' -> True, '007' -> 7: runs fitted then
    still find their values), a number as text (7 -> '7': labels fitted from JSONL strings);
    None when there is none."""
    if not isinstance(value, str):
        key = _key(value)
        return str(key) if isinstance(key, (int, float)) and not isinstance(key, bool) else None
    text = value.strip()
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        number = float(text)
    except ValueError:
        return None
    return _key(number) if math.isfinite(number) else None


def _code_width(known: Any) -> int | None:
    """The width of fixed-width digit codes ('01067', '00420'): when every known value is a
    string of that many digits and one has a leading zero; else None."""
    widths = {len(v) if isinstance(v, str) and v.isdigit() else -1 for v in known}
    if len(widths) != 1 or -1 in widths or not any(str(v).startswith("0") for v in known):
        return None
    return widths.pop()


def _lookup(values: pd.Series, index_of: dict[Any, int], *, codes: bool = False) -> np.ndarray:
    """Index of each cell in `index_of` (else of its other spelling), -1 where missing or not
    found. With `codes` (inputs, where a miss is silently 'unknown'), a number among fixed-width
    digit codes is looked up as that code: 1067 -> '01067'. Labels stay strict: 7 is not the
    user's '007', and a miss there is an error naming it."""
    width = _code_width(index_of) if codes else None

    def index(value: Any) -> int:
        if _is_missing(value):
            return -1
        found = index_of.get(_key(value))
        if found is None and width is not None:
            key = _key(value)
            if isinstance(key, int) and not isinstance(key, bool) and key >= 0:
                found = index_of.get(str(key).zfill(width))
        return index_of.get(_other_spelling(value), -1) if found is None else found

    return np.fromiter((index(v) for v in values.tolist()), np.int64, len(values))


class CategoryInputEncoder:
    """Looks values up in a train vocabulary: int64 (B,), 0 = unknown or missing."""

    def __init__(self, config: CategoryInput, state: dict[str, Any] | None = None) -> None:
        self.config = config
        self.vocabulary: list[Any] = []
        """Known values; value vocabulary[i] has index i + 1."""
        self.fitted = state is not None
        if state is not None:
            self.vocabulary = list(state["vocabulary"])

    def fit(self, values: pd.Series, *, where: str, base_dir: Path | None = None) -> None:
        """Keep the most frequent values (at most max_categories, each seen >= min_count times)."""
        kept = [v for v, n in _counts(values) if n >= self.config.min_count]
        self.vocabulary = kept[: self.config.max_categories]
        self.fitted = True

    def transform(
        self, values: pd.Series, *, where: str, base_dir: Path | None = None
    ) -> torch.Tensor:
        """`encode` as a tensor."""
        return to_tensor(self.encode(values, where=where, base_dir=base_dir))

    def encode(self, values: pd.Series, *, where: str, base_dir: Path | None = None) -> np.ndarray:
        """Return int64 (B,): 1..vocab_size-1 for known values, 0 for unknown or missing ones."""
        if not self.fitted:
            raise RuntimeError(f"category input '{self.config.name}' used before fit")
        index_of = {value: i + 1 for i, value in enumerate(self.vocabulary)}
        return np.maximum(_lookup(values, index_of, codes=True), 0)

    def state(self) -> dict[str, Any]:
        return {"vocabulary": self.vocabulary}

    @property
    def vocab_size(self) -> int:
        """Number of indices, index 0 (unknown / missing) included."""
        return len(self.vocabulary) + 1

    def spec(self) -> InputSpec:
        default_dim = min(32, max(1, round(1.6 * self.vocab_size**0.56)))
        return InputSpec(
            name=self.config.name,
            type="category",
            vocab_size=self.vocab_size,
            embedding_dim=self.config.embedding_dim or default_dim,
        )


class CategoryOutputEncoder:
    """A class label: int64 (B,) class index into the sorted train classes."""

    def __init__(self, config: CategoryOutput, state: dict[str, Any] | None = None) -> None:
        self.config = config
        self.classes: list[Any] = []
        """Train labels sorted (numbers numerically, text lexicographically); index = class id."""
        self.counts: list[int] = []
        """Train rows of each class, in class order (empty in runs saved before counts were)."""
        self.classes_from: str | None = None
        """Where the classes came from when not from the train split (the config key of a
        private run's given classes), for the error on a label they lack; not saved."""
        if state is not None:
            self.classes = list(state["classes"])
            self.counts = list(state.get("counts", []))

    def fit(self, values: pd.Series, *, where: str, base_dir: Path | None = None) -> None:
        """Collect the classes; fewer than two on train is an error."""
        counts = dict(_counts(values))
        self.classes = sorted(counts, key=_sort_key)
        self.counts = [counts[c] for c in self.classes]
        if len(self.classes) < 2:
            raise DataError(
                f"{where}: target '{self.config.name}' has {len(self.classes)} distinct value(s) "
                f"({', '.join(repr(c) for c in self.classes)}) in the train split; classification "
                "needs at least two. Check the split or the target column."
            )

    def transform(
        self, values: pd.Series, *, where: str, base_dir: Path | None = None
    ) -> torch.Tensor:
        """`encode` as a tensor."""
        return to_tensor(self.encode(values, where=where, base_dir=base_dir))

    def encode(self, values: pd.Series, *, where: str, base_dir: Path | None = None) -> np.ndarray:
        """Return int64 (B,) class indices; a label train never saw is an error."""
        if not self.classes:
            raise RuntimeError(f"category output '{self.config.name}' used before fit")
        codes = _lookup(values, {c: i for i, c in enumerate(self.classes)})
        unknown = codes < 0
        if unknown.any():
            raise self._unknown_error(values, unknown, where)
        return codes

    def _unknown_error(self, values: pd.Series, unknown: np.ndarray, where: str) -> DataError:
        value = values[unknown].iloc[0]
        same = unknown & (
            values.isna().to_numpy() if pd.isna(value) else (values == value).to_numpy()
        )
        known = ", ".join(repr(c) for c in self.classes[:5])
        more = f", ... ({len(self.classes)} in all)" if len(self.classes) > 5 else ""
        source = self.classes_from or "the train split"
        what = (
            "is missing"
            if pd.isna(value)
            else f"has label {describe_value(value)}, which {source} lacks"
        )
        fix = (
            f"Add the label to {self.classes_from}, or fix or drop these rows."
            if self.classes_from is not None and not pd.isna(value)
            else "Fix or drop these rows, or move them into train."
        )
        return DataError(
            f"{where}: target '{self.config.name}' {what} ({describe_rows(values.index[same])}); "
            f"known labels: {known}{more}. {fix}"
        )

    def decode(self, outputs: torch.Tensor | np.ndarray) -> dict[str, Any]:
        """Logits (B, K) -> {name: labels as train held them (text stays text: '007'),
        name_prob_CLASS: probability}."""
        probabilities = softmax(as_float64(outputs))
        predicted = [self.classes[i] for i in probabilities.argmax(axis=-1)]
        columns: dict[str, Any] = {self.config.name: predicted}
        for i, label in enumerate(self.classes):
            columns[f"{self.config.name}_prob_{label}"] = probabilities[:, i]
        return columns

    def state(self) -> dict[str, Any]:
        return {"classes": self.classes, "counts": self.counts}

    def spec(self) -> OutputSpec:
        weights = balanced_weights(self.counts) if self.config.class_weights else ()
        return OutputSpec(
            name=self.config.name,
            type="category",
            num_classes=len(self.classes),
            class_weights=weights,
        )


def balanced_weights(counts: list[int]) -> tuple[float, ...]:
    """n / (k * n_c) for each of k classes with n_c train rows (scikit-learn's 'balanced')."""
    if not counts or min(counts) <= 0:
        return ()
    total = sum(counts)
    return tuple(total / (len(counts) * count) for count in counts)
