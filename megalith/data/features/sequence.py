"""Sequence inputs: a series of numbers per row (a time series), cut or padded to a fixed length.

A cell is a string of numbers separated by spaces, commas or semicolons ("1.5 2 3", "1,2,3",
"[1, 2, 3]"), a list or array of numbers (JSONL and Parquet give lists), or a single number; a
missing cell is an empty sequence. Values are standardised with the train mean / std of all
steps, and each row becomes float32 (L, 2): the value and a 1.0 / 0.0 mask of the real steps.
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from megalith.configbase import ConfigModel
from megalith.data.arrays import to_tensor
from megalith.data.features.encoding import SequenceEncoderConfig
from megalith.data.rows import describe_row, describe_value
from megalith.data.specs import InputSpec
from megalith.errors import DataError

if TYPE_CHECKING:
    import torch

_LONGEST_DEFAULT = 512
_SEPARATORS = re.compile(r"[\s,;]+")
_BRACKETS = "[]() "
_SHOWN = 60
"""Characters of a cell quoted in an error message."""


class SequenceInput(ConfigModel):
    """A sequence of numbers per row (a time series), encoded into one vector."""

    name: str
    """Column name in the table."""
    type: Literal["sequence"] = "sequence"
    max_length: int | None = Field(None, gt=0)
    """Steps kept per row (the last ones); by default the 95th percentile of train lengths,
    at most 512."""
    normalize: bool = True
    """Standardise the values with the mean / std of every train step."""
    embedding_dim: int = Field(32, gt=0)
    """Width each step's value is projected to before the sequence encoder."""
    encoder: SequenceEncoderConfig = SequenceEncoderConfig(kind="lstm")
    """How the steps become one vector: lstm by default (order matters in a series: rising and
    falling hold the same values), or gru, rnn, cnn, transformer, bag."""

    @field_validator("encoder", mode="before")
    @classmethod
    def _lstm_unless_named(cls, value: Any) -> Any:
        # `encoder: {hidden: 64}` keeps this feature's default kind, not the text default (bag)
        if isinstance(value, dict) and "kind" not in value:
            return {"kind": "lstm", **value}
        return value


_WRITE_NUMBERS = (
    "write numbers separated by spaces, commas or semicolons, or leave the cell empty for an "
    "empty sequence"
)


def _bad_cell(
    column: str, where: str, label: Hashable, cell: Any, problem: str, advice: str = _WRITE_NUMBERS
) -> DataError:
    shown = describe_value(cell)
    if len(shown) > _SHOWN:
        shown = shown[: _SHOWN - 3] + "..."
    return DataError(
        f"{where}: column '{column}', {describe_row(label)}: {problem} in the sequence {shown}; "
        f"{advice}."
    )


def _cell_tokens(cell: Any) -> list[Any]:
    """The steps of one cell before parsing: strings split on separators, lists as they are."""
    if isinstance(cell, str):
        text = cell.strip().strip(_BRACKETS)
        return [token for token in _SEPARATORS.split(text) if token]
    if isinstance(cell, (list, tuple, np.ndarray, pd.Series)):
        return list(cell)
    if cell is None or pd.isna(cell):
        return []
    return [cell]  # a single number


def parse_sequence(cell: Any, *, column: str, where: str, label: Hashable) -> np.ndarray:
    """One cell as float64 (steps,); an empty array for a missing or empty cell.

    Raises:
        DataError: a step is not a number, or is NaN / infinite; naming column, row and value.
    """
    tokens = _cell_tokens(cell)
    try:
        steps = np.asarray(tokens, dtype=np.float64)
    except (TypeError, ValueError):
        steps = None
    if steps is None or steps.ndim != 1:
        for token in tokens:
            try:
                float(token)
            except (TypeError, ValueError):
                problem = f"{describe_value(token)} is not a number"
                raise _bad_cell(column, where, label, cell, problem) from None
        raise _bad_cell(column, where, label, cell, "a step is not a single number")
    finite = np.isfinite(steps)
    if not finite.all():
        step = int(np.argmin(finite))
        problem = f"step {step + 1} is {tokens[step]!s} (not a finite number)"
        advice = "replace it with a finite number or remove the step"
        raise _bad_cell(column, where, label, cell, problem, advice)
    return steps


def parse_sequences(values: pd.Series, *, column: str, where: str) -> list[np.ndarray]:
    """Every cell of a column as float64 (steps,) arrays (see `parse_sequence`)."""
    return [
        parse_sequence(cell, column=column, where=where, label=label)
        for label, cell in zip(values.index, values.tolist(), strict=True)
    ]


def pad_steps(sequences: list[np.ndarray], length: int) -> np.ndarray:
    """float32 (B, length, 2): the last `length` steps of each row left-aligned in channel 0,
    1.0 in channel 1 where a step is real, zeros after the row ends."""
    out = np.zeros((len(sequences), length, 2), dtype=np.float32)
    for row, steps in enumerate(sequences):
        kept = steps[-length:] if len(steps) > length else steps
        out[row, : len(kept), 0] = kept
        out[row, : len(kept), 1] = 1.0
    return out


class SequenceInputEncoder:
    """Learns the train mean / std and max_length; float32 (B, L, 2) = (value, real-step mask)."""

    def __init__(self, config: SequenceInput, state: dict[str, Any] | None = None) -> None:
        self.config = config
        self.mean, self.std = 0.0, 1.0
        self.max_length = 0
        if state is not None:
            self.mean, self.std = float(state["mean"]), float(state["std"])
            self.max_length = int(state["max_length"])

    def fit(self, values: pd.Series, *, where: str, base_dir: Path | None = None) -> None:
        """Mean and population std of every train step (std 1 if constant); max_length."""
        column = self.config.name
        sequences = parse_sequences(values, column=column, where=where)
        lengths = np.array([len(steps) for steps in sequences])
        if lengths.sum() == 0:
            raise DataError(
                f"{where}: sequence column '{column}' has no numbers in the train split; "
                "check the column, or remove it from the inputs."
            )
        every_step = np.concatenate(sequences)
        self.mean = float(every_step.mean())
        std = float(every_step.std())
        self.std = std if std > 0 else 1.0
        percentile = int(np.ceil(np.percentile(lengths, 95)))
        self.max_length = self.config.max_length or min(max(percentile, 1), _LONGEST_DEFAULT)

    def transform(
        self, values: pd.Series, *, where: str, base_dir: Path | None = None
    ) -> torch.Tensor:
        """`encode` as a tensor."""
        return to_tensor(self.encode(values, where=where, base_dir=base_dir))

    def encode(self, values: pd.Series, *, where: str, base_dir: Path | None = None) -> np.ndarray:
        """Return float32 (B, max_length, 2); a row longer than max_length keeps its last steps."""
        if self.max_length == 0:
            raise RuntimeError(f"sequence input '{self.config.name}' used before fit")
        sequences = parse_sequences(values, column=self.config.name, where=where)
        if self.config.normalize:
            sequences = [(steps - self.mean) / self.std for steps in sequences]
        return pad_steps(sequences, self.max_length)

    def state(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std, "max_length": self.max_length}

    def spec(self) -> InputSpec:
        assert self.max_length > 0, "spec() before fit()"
        return InputSpec(
            name=self.config.name,
            type="sequence",
            shape=(self.max_length, 2),
            embedding_dim=self.config.embedding_dim,
            encoder=self.config.encoder,
        )
