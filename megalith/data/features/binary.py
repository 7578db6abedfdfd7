"""Binary features: two values (true/false, yes/no, 0/1, or any two strings)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from megalith.configbase import ConfigModel
from megalith.data.arrays import as_float64, to_tensor
from megalith.data.features.category import balanced_weights
from megalith.data.rows import describe_row, describe_rows, describe_value
from megalith.data.specs import InputSpec, OutputSpec
from megalith.errors import DataError

if TYPE_CHECKING:
    import torch


class BinaryInput(ConfigModel):
    """A two-valued input column."""

    name: str
    """Column name in the table."""
    type: Literal["binary"] = "binary"
    positive: str | None = None
    """The value that means 1; by default true/yes/1, or else the larger of the two values."""
    missing: Literal["mode", "error"] = "mode"
    """What to do with a missing cell: fill with the most frequent value, or stop with an error."""


class BinaryOutput(ConfigModel):
    """A two-valued target: binary classification with binary cross-entropy."""

    name: str
    """Column name in the table."""
    type: Literal["binary"] = "binary"
    positive: str | None = None
    """The value that means 1; by default true/yes/1, or else the larger of the two values."""
    weight: float = Field(1.0, gt=0)
    """Weight of this output's loss in the total loss."""
    threshold: float | Literal["auto"] = 0.5
    """Probability above which a prediction is the positive value; auto: the one that maximises
    F1 on the val split, chosen after training and saved in preprocessor.json (imbalanced data).
    Accuracy, F1, precision, recall and the confusion matrix all use it, as predict does."""
    class_weights: Literal["balanced"] | None = None
    """balanced: weight each value's loss by n_rows / (2 * its train rows), so the rare value
    counts as much as the common one (imbalanced data)."""
    missing: Literal["drop", "error"] = "drop"

    @field_validator("threshold")
    @classmethod
    def _probability(cls, value: float | str) -> float | str:
        if isinstance(value, float) and not 0 < value < 1:
            raise ValueError("threshold must be between 0 and 1 (exclusive), or auto")
        return value

    """Rows whose target is missing: drop them (with a notice) or stop with an error."""


_POSITIVE_WORDS = frozenset({"true", "yes", "1", "y", "t", "positive"})


def _text(value: Any) -> str:
    """How a value reads as text: True -> 'true', 1.0 -> '1', ' Yes ' -> 'yes'."""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value).strip().lower()


def reads_as_positive(value: Any) -> bool:
    """Whether a value names the positive side by itself: true, yes, 1, y, t, positive."""
    return _text(value) in _POSITIVE_WORDS


def _sort_key(value: Any) -> tuple[int, Any]:
    """Numbers sort numerically and before text; text sorts lexicographically."""
    if isinstance(value, (int, float, np.number)) and not isinstance(value, (bool, np.bool_)):
        return (0, float(value))
    return (1, _text(value))


def _choose_positive(values: list[Any], positive: str | None, *, column: str, where: str) -> Any:
    """The value that means 1, or None when train holds one value and it reads as negative."""
    if positive is not None:
        for value in values:
            if _text(value) == positive.strip().lower():
                return value
        if len(values) == 1:
            return None
        raise DataError(
            f"{where}: column '{column}': positive value {positive!r} is not among the values "
            f"seen in the train split ({', '.join(repr(v) for v in values)}); fix 'positive'."
        )
    for value in values:
        if _text(value) in _POSITIVE_WORDS:
            return value
    return max(values, key=_sort_key) if len(values) == 2 else None


class _BinaryCodec:
    """Maps a two-valued column to 0.0 / 1.0; shared by the input and the output encoders."""

    def __init__(self, name: str, positive: str | None, state: dict[str, Any] | None) -> None:
        self.name, self.positive_config = name, positive
        self.negative: Any = None
        """The value that means 0 (None when train never held it)."""
        self.positive: Any = None
        """The value that means 1 (None when train never held it)."""
        self.mode = 0.0
        self.fitted = state is not None
        if state is not None:
            self.negative, self.positive = state["values"]
            self.mode = float(state["mode"])

    @property
    def known(self) -> list[Any]:
        return [v for v in (self.negative, self.positive) if v is not None]

    def fit(self, values: pd.Series, *, where: str) -> None:
        counts = values.dropna().value_counts()
        if len(counts) > 2:
            shown = ", ".join(describe_value(v) for v in counts.index[:5])
            raise DataError(
                f"{where}: column '{self.name}' has {len(counts)} values ({shown}), but a binary "
                "feature takes two; declare it as type category, or fix the values."
            )
        if len(counts) == 0:
            raise DataError(f"{where}: column '{self.name}' is empty in the train split.")
        seen = [v.item() if isinstance(v, np.generic) else v for v in counts.index]
        self.positive = _choose_positive(seen, self.positive_config, column=self.name, where=where)
        others = [v for v in seen if v != self.positive]
        self.negative = others[0] if others else None
        self.mode = float(seen[0] == self.positive)
        self.fitted = True

    def encode(self, values: pd.Series, *, where: str) -> tuple[np.ndarray, np.ndarray]:
        """Return (codes float32 with NaN where missing, missing mask)."""
        if not self.fitted:
            raise RuntimeError(f"binary feature '{self.name}' used before fit")
        lookup = {v: float(v == self.positive) for v in self.known}
        # a value not found as it is, by how it reads: 'TRUE' from a CSV is True from a Parquet
        by_text = {_text(v): float(v == self.positive) for v in self.known}
        codes = np.fromiter(
            (lookup[v] if v in lookup else by_text.get(_text(v), np.nan) for v in values),
            np.float32,
            len(values),
        )
        missing = values.isna().to_numpy()
        unseen = np.isnan(codes) & ~missing
        if unseen.any():
            label, value = values.index[unseen][0], values[unseen].iloc[0]
            known = ", ".join(repr(v) for v in self.known)
            raise DataError(
                f"{where}: column '{self.name}', {describe_row(label)}: value "
                f"{describe_value(value)} was not seen in the train split (known: {known}); "
                "fix the value, or make sure train holds both values."
            )
        return codes, missing

    def state(self) -> dict[str, Any]:
        return {"values": [self.negative, self.positive], "mode": self.mode}


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)) without overflow for large negative logits."""
    positive = logits >= 0
    exp = np.exp(-np.abs(logits))
    return np.where(positive, 1.0 / (1.0 + exp), exp / (1.0 + exp))


def _missing_error(values: pd.Series, missing: np.ndarray, *, column: str, where: str) -> DataError:
    return DataError(
        f"{where}: column '{column}' has {int(missing.sum())} missing values "
        f"({describe_rows(values.index[missing])}); fill them in, or set 'missing' to fill them."
    )


class BinaryInputEncoder:
    """A two-valued input: float32 (B,) of 0.0 / 1.0."""

    def __init__(self, config: BinaryInput, state: dict[str, Any] | None = None) -> None:
        self.config = config
        self.codec = _BinaryCodec(config.name, config.positive, state)

    def fit(self, values: pd.Series, *, where: str, base_dir: Path | None = None) -> None:
        """Learn the two values, which one is positive, and the most frequent one."""
        if self.config.missing == "error" and values.isna().any():
            raise _missing_error(
                values, values.isna().to_numpy(), column=self.config.name, where=where
            )
        self.codec.fit(values, where=where)

    def transform(
        self, values: pd.Series, *, where: str, base_dir: Path | None = None
    ) -> torch.Tensor:
        """`encode` as a tensor."""
        return to_tensor(self.encode(values, where=where, base_dir=base_dir))

    def encode(self, values: pd.Series, *, where: str, base_dir: Path | None = None) -> np.ndarray:
        """Return float32 (B,); missing cells get the train mode (or an error, as configured)."""
        codes, missing = self.codec.encode(values, where=where)
        if missing.any():
            if self.config.missing == "error":
                raise _missing_error(values, missing, column=self.config.name, where=where)
            codes[missing] = self.codec.mode
        return codes

    def state(self) -> dict[str, Any]:
        return self.codec.state()

    def spec(self) -> InputSpec:
        return InputSpec(name=self.config.name, type="binary")


class BinaryOutputEncoder:
    """A two-valued target: float32 (B,) of 0.0 / 1.0; the model gives one logit per row."""

    def __init__(self, config: BinaryOutput, state: dict[str, Any] | None = None) -> None:
        self.config = config
        self.codec = _BinaryCodec(config.name, config.positive, state)
        self.counts: list[int] = list((state or {}).get("counts", []))
        """Train rows of the negative and the positive value."""
        self.chosen_threshold: float | None = (state or {}).get("threshold")
        """With threshold auto: the value chosen on the val split after training."""

    @property
    def threshold(self) -> float:
        """The decision threshold predict applies: the config's, or the one chosen for auto
        (0.5 until it is chosen, e.g. for the per-epoch validation metrics)."""
        if isinstance(self.config.threshold, float):
            return self.config.threshold
        return self.chosen_threshold if self.chosen_threshold is not None else 0.5

    def fit(self, values: pd.Series, *, where: str, base_dir: Path | None = None) -> None:
        """Learn the two values; a target with a single value on train cannot be learned."""
        self.codec.fit(values, where=where)
        codes, missing = self.codec.encode(values, where=where)
        positives = int(codes[~missing].sum())
        self.counts = [int((~missing).sum()) - positives, positives]
        if len(self.codec.known) < 2:
            raise DataError(
                f"{where}: target '{self.config.name}' has a single value "
                f"({self.codec.known[0]!r}) in the train split; a binary target needs both "
                "values in train. Check the split or the column."
            )

    def transform(
        self, values: pd.Series, *, where: str, base_dir: Path | None = None
    ) -> torch.Tensor:
        """`encode` as a tensor."""
        return to_tensor(self.encode(values, where=where, base_dir=base_dir))

    def encode(self, values: pd.Series, *, where: str, base_dir: Path | None = None) -> np.ndarray:
        """Return float32 (B,); a missing target is an error here (the preprocessor drops them)."""
        codes, missing = self.codec.encode(values, where=where)
        if missing.any():
            raise _missing_error(values, missing, column=self.config.name, where=where)
        return codes

    def decode(self, outputs: torch.Tensor | np.ndarray) -> dict[str, Any]:
        """Logits (B,) -> {name: original values, name_prob_VALUE: probability of each value}."""
        probability = sigmoid(as_float64(outputs).reshape(-1))
        negative, positive = self.codec.negative, self.codec.positive
        name = self.config.name
        predicted = [positive if p > self.threshold else negative for p in probability]
        return {
            name: predicted,
            f"{name}_prob_{negative}": 1.0 - probability,
            f"{name}_prob_{positive}": probability,
        }

    def state(self) -> dict[str, Any]:
        chosen = {} if self.chosen_threshold is None else {"threshold": self.chosen_threshold}
        return {**self.codec.state(), "counts": self.counts, **chosen}

    def spec(self) -> OutputSpec:
        weights = balanced_weights(self.counts) if self.config.class_weights else ()
        return OutputSpec(
            name=self.config.name,
            type="binary",
            num_classes=2,
            threshold=self.threshold,
            class_weights=weights,
        )
