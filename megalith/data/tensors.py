"""Encoded rows as tensors ready for batching, and how error messages name the source rows."""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class TensorTable:
    """Encoded inputs and targets of the same rows; every tensor's first dimension is the row."""

    inputs: dict[str, torch.Tensor]
    targets: dict[str, torch.Tensor]
    """Empty when targets were not requested."""
    rows: np.ndarray
    """Index labels of the source frame that these rows came from (dropped rows left out)."""

    def __post_init__(self) -> None:
        for group in (self.inputs, self.targets):
            for name, tensor in group.items():
                if tensor.shape[0] != len(self.rows):
                    raise ValueError(
                        f"tensor '{name}' has {tensor.shape[0]} rows, expected {len(self.rows)}"
                    )

    def __len__(self) -> int:
        return len(self.rows)

    def select(self, index: torch.Tensor) -> TensorTable:
        """Return the rows at `index` (int64 positions, 0..len-1), in that order.

        This runs once per training batch, so it skips the row-count check (the rows of a
        valid table picked by one index are valid) and moves `index` to each device once.
        """
        positions = index.detach().to("cpu").numpy()
        on_device = {index.device: index}

        def take(t: torch.Tensor) -> torch.Tensor:
            at = on_device.get(t.device)
            if at is None:
                at = on_device[t.device] = index.to(t.device, non_blocking=True)
            return t[at]

        picked = object.__new__(TensorTable)
        picked.inputs = {name: take(t) for name, t in self.inputs.items()}
        picked.targets = {name: take(t) for name, t in self.targets.items()}
        picked.rows = self.rows[positions]
        return picked

    @property
    def device(self) -> torch.device:
        """The device of the first tensor (tables are kept on one device)."""
        first = next(iter(self.inputs.values()), None)
        return first.device if first is not None else torch.device("cpu")

    def to(self, device: torch.device | str, non_blocking: bool = False) -> TensorTable:
        """Return a copy with every tensor on `device`; `rows` stays a numpy array."""
        return TensorTable(
            inputs={n: t.to(device, non_blocking=non_blocking) for n, t in self.inputs.items()},
            targets={n: t.to(device, non_blocking=non_blocking) for n, t in self.targets.items()},
            rows=self.rows,
        )


def describe_row(label: Hashable) -> str:
    """Name a row for people: frames keep 0-based labels, so label 3 is 'row 4' (no header)."""
    if isinstance(label, (int, np.integer)) and not isinstance(label, bool):
        return f"row {int(label) + 1}"
    return f"row {label!r}"


def describe_rows(labels: Iterable[Hashable], limit: int = 5) -> str:
    """Name up to `limit` rows: 'row 4', 'rows 4, 9, 17' or 'rows 4, 9, 17, ... (12 in all)'."""
    labels = list(labels)
    names = [describe_row(label).removeprefix("row ") for label in labels[:limit]]
    if len(labels) == 1:
        return f"row {names[0]}"
    more = f", ... ({len(labels)} in all)" if len(labels) > limit else ""
    return f"rows {', '.join(names)}{more}"


def describe_value(value: object) -> str:
    """Show a cell as Python would write it: np.int64(5) -> 5, 'a' -> 'a'."""
    return repr(value.item() if isinstance(value, np.generic) else value)
