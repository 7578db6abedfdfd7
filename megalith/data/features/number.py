"""Number features: floats or integers, standardised with statistics fitted on the train split."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from megalith.configbase import ConfigModel
from megalith.data.arrays import as_float64, to_tensor
from megalith.data.rows import describe_row, describe_rows, describe_value
from megalith.data.specs import InputSpec, OutputSpec
from megalith.errors import DataError

if TYPE_CHECKING:
    import torch


class NumberInput(ConfigModel):
    """A numeric input column."""

    name: str
    """Column name in the table."""
    type: Literal["number"] = "number"
    transform: Literal["none", "log", "quantile"] = "none"
    """Before scaling: log (sign(x) * log(1 + |x|), for heavy-tailed sizes and counts), or
    quantile (each value's rank among train quantiles, spread evenly over [-sqrt 3, sqrt 3])."""
    normalize: Literal["standard", "minmax", "none"] = "standard"
    """How to scale values (after the transform), with statistics fitted on the train split."""
    missing: Literal["mean", "zero", "error"] = "mean"
    """What to do with a missing cell: fill with the train mean, with 0, or stop with an error."""


class NumberOutput(ConfigModel):
    """A numeric target: regression with mean squared error."""

    name: str
    """Column name in the table."""
    type: Literal["number"] = "number"
    weight: float = Field(1.0, gt=0)
    """Weight of this output's loss in the total loss."""
    missing: Literal["drop", "error"] = "drop"
    """Rows whose target is missing: drop them (with a notice) or stop with an error."""


def parse_numbers(values: pd.Series, *, column: str, where: str) -> np.ndarray:
    """Parse a column to float64 (NaN where missing); a non-number or +/-Inf is an error.

    Raises:
        DataError: naming the column, the row and the value.
    """
    parsed = pd.to_numeric(values, errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan, copy=True
    )
    bad = np.isnan(parsed) & ~values.isna().to_numpy()
    if bad.any():
        label, value = values.index[bad][0], values[bad].iloc[0]
        count = int(bad.sum())
        raise DataError(
            f"{where}: column '{column}', {describe_row(label)}: value {describe_value(value)} "
            f"is not a number ({count} such row{'s' if count > 1 else ''}); fix the value, or "
            "declare the column as type category."
        )
    infinite = np.isinf(parsed)
    if infinite.any():
        label, value = values.index[infinite][0], values[infinite].iloc[0]
        raise DataError(
            f"{where}: column '{column}', {describe_row(label)}: value {describe_value(value)} is "
            "infinite; replace it with a finite number or leave the cell empty."
        )
    return parsed


def _missing_error(values: pd.Series, missing: np.ndarray, *, column: str, where: str) -> DataError:
    rows = describe_rows(values.index[missing])
    return DataError(
        f"{where}: column '{column}' has {int(missing.sum())} missing values ({rows}); "
        "fill them in, or set this feature's 'missing' option to fill them."
    )


def _finite_stats(numbers: np.ndarray, *, column: str, where: str) -> tuple[float, float]:
    present = numbers[~np.isnan(numbers)]
    if present.size == 0:
        raise DataError(
            f"{where}: column '{column}' has no numbers in the train split; check the column."
        )
    return float(present.mean()), float(present.std())


_QUANTILES = 101
"""Points of the fitted quantile table (every percentile)."""


def signed_log(numbers: np.ndarray) -> np.ndarray:
    """sign(x) * log(1 + |x|): heavy tails shrink, 0 stays 0, negative values keep their sign."""
    return np.sign(numbers) * np.log1p(np.abs(numbers))


def quantile_rank(numbers: np.ndarray, quantiles: np.ndarray) -> np.ndarray:
    """Each value's position among the train quantiles (piecewise linear, tied quantiles
    averaged), mapped to a uniform spread on [-sqrt 3, sqrt 3] (mean 0, variance 1)."""
    levels = np.linspace(0.0, 1.0, len(quantiles))
    # np.interp needs increasing x: average the levels of tied quantiles (repeated values)
    unique, inverse = np.unique(quantiles, return_inverse=True)
    mean_levels = np.bincount(inverse, weights=levels) / np.bincount(inverse)
    if len(unique) < 2:  # a constant column: every value sits in the middle
        return np.where(np.isnan(numbers), np.nan, 0.0)
    ranks = np.interp(numbers, unique, mean_levels)  # NaN stays NaN (a missing cell)
    return (ranks - 0.5) * np.sqrt(12.0)


class NumberInputEncoder:
    """Parses a numeric column, optionally log- or quantile-transforms it, and scales it with
    train statistics: float32 (B,). Everything fitted is saved in preprocessor.json, so
    predict, the exported bundle and the torch-free runtime transform identically."""

    def __init__(self, config: NumberInput, state: dict[str, Any] | None = None) -> None:
        self.config = config
        self.mean = self.std = self.min = self.max = 0.0
        self.quantiles: list[float] = []
        """transform quantile: the train values at every percentile."""
        self.fitted = state is not None
        if state is not None:
            self.mean, self.std = float(state["mean"]), float(state["std"])
            self.min, self.max = float(state["min"]), float(state["max"])
            self.quantiles = [float(q) for q in state.get("quantiles", [])]

    def _transformed(self, numbers: np.ndarray) -> np.ndarray:
        if self.config.transform == "log":
            return signed_log(numbers)
        if self.config.transform == "quantile":
            return quantile_rank(numbers, np.asarray(self.quantiles))
        return numbers

    def fit(self, values: pd.Series, *, where: str, base_dir: Path | None = None) -> None:
        """Learn the quantile table (transform quantile), then the mean, standard deviation
        (population), minimum and maximum of the transformed train values."""
        numbers = parse_numbers(values, column=self.config.name, where=where)
        missing = np.isnan(numbers)
        if self.config.missing == "error" and missing.any():
            raise _missing_error(values, missing, column=self.config.name, where=where)
        present = numbers[~missing]
        if self.config.transform == "quantile" and present.size:
            table = np.quantile(present, np.linspace(0.0, 1.0, _QUANTILES))
            self.quantiles = [float(q) for q in table]
        numbers = self._transformed(numbers)
        self.mean, self.std = _finite_stats(numbers, column=self.config.name, where=where)
        self.min, self.max = float(np.nanmin(numbers)), float(np.nanmax(numbers))
        self.fitted = True

    def transform(
        self, values: pd.Series, *, where: str, base_dir: Path | None = None
    ) -> torch.Tensor:
        """`encode` as a tensor."""
        return to_tensor(self.encode(values, where=where, base_dir=base_dir))

    def encode(self, values: pd.Series, *, where: str, base_dir: Path | None = None) -> np.ndarray:
        """Return float32 (B,); missing cells become the train mean of the transformed values
        (0 after standard scaling) or 0 (before scaling)."""
        if not self.fitted:
            raise RuntimeError(f"number input '{self.config.name}' used before fit")
        numbers = parse_numbers(values, column=self.config.name, where=where)
        missing = np.isnan(numbers)
        if missing.any() and self.config.missing == "error":
            raise _missing_error(values, missing, column=self.config.name, where=where)
        numbers = self._transformed(numbers)
        if missing.any():
            numbers[missing] = self.mean if self.config.missing == "mean" else 0.0
        if self.config.normalize == "standard":
            numbers = (numbers - self.mean) / (self.std if self.std > 0 else 1.0)
        elif self.config.normalize == "minmax":
            span = self.max - self.min
            numbers = (numbers - self.min) / (span if span > 0 else 1.0)
        return numbers.astype(np.float32)

    def state(self) -> dict[str, Any]:
        state = {"mean": self.mean, "std": self.std, "min": self.min, "max": self.max}
        return {**state, "quantiles": self.quantiles} if self.quantiles else state

    def spec(self) -> InputSpec:
        return InputSpec(name=self.config.name, type="number")


class NumberOutputEncoder:
    """A regression target, standardised with the train mean / std: float32 (B,)."""

    def __init__(self, config: NumberOutput, state: dict[str, Any] | None = None) -> None:
        self.config = config
        self.mean, self.std = 0.0, 1.0
        self.fitted = state is not None
        if state is not None:
            self.mean, self.std = float(state["mean"]), float(state["std"])

    def fit(self, values: pd.Series, *, where: str, base_dir: Path | None = None) -> None:
        """Learn the mean and standard deviation (1 when the column is constant) from train."""
        numbers = parse_numbers(values, column=self.config.name, where=where)
        mean, std = _finite_stats(numbers, column=self.config.name, where=where)
        self.mean, self.std = mean, std if std > 0 else 1.0
        self.fitted = True

    def transform(
        self, values: pd.Series, *, where: str, base_dir: Path | None = None
    ) -> torch.Tensor:
        """`encode` as a tensor."""
        return to_tensor(self.encode(values, where=where, base_dir=base_dir))

    def encode(self, values: pd.Series, *, where: str, base_dir: Path | None = None) -> np.ndarray:
        """Return the standardised target, float32 (B,); a missing target is an error here."""
        if not self.fitted:
            raise RuntimeError(f"number output '{self.config.name}' used before fit")
        numbers = parse_numbers(values, column=self.config.name, where=where)
        missing = np.isnan(numbers)
        if missing.any():
            raise _missing_error(values, missing, column=self.config.name, where=where)
        return ((numbers - self.mean) / self.std).astype(np.float32)

    def decode(self, outputs: torch.Tensor | np.ndarray) -> dict[str, np.ndarray]:
        """Model outputs (B,) -> {name: values in the original units} (float64)."""
        standardised = as_float64(outputs).reshape(-1)
        return {self.config.name: standardised * self.std + self.mean}

    def state(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std}

    def spec(self) -> OutputSpec:
        return OutputSpec(name=self.config.name, type="number", mean=self.mean, std=self.std)
