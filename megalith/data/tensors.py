"""Encoded rows as tensors ready for batching, and how error messages name the source rows."""

from __future__ import annotations

from dataclasses import dataclass, field

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
    packs: list[tuple[list[str], torch.Tensor]] = field(default_factory=list, repr=False)
    """Groups of 1-D input columns stored side by side in one (rows, columns) matrix (see
    `pack`); their entries in `inputs` are views of it."""

    def __post_init__(self) -> None:
        for group in (self.inputs, self.targets):
            for name, tensor in group.items():
                if tensor.shape[0] != len(self.rows):
                    raise ValueError(
                        f"tensor '{name}' has {tensor.shape[0]} rows, expected {len(self.rows)}"
                    )

    def __len__(self) -> int:
        return len(self.rows)

    def pack(self) -> TensorTable:
        """Store the 1-D input columns of each dtype and device side by side in one matrix, in
        place (the values stay the same, `inputs` holds views), so that `select` gathers a
        batch of them with one indexing instead of one per column: a table of 64 number
        columns is gathered ~8x faster. Returns the table."""
        if self.packs:
            return self
        groups: dict[tuple[torch.dtype, torch.device], list[str]] = {}
        for name, tensor in self.inputs.items():
            if tensor.ndim == 1:
                groups.setdefault((tensor.dtype, tensor.device), []).append(name)
        for names in groups.values():
            if len(names) < 2:
                continue
            matrix = torch.stack([self.inputs[name] for name in names], dim=1)
            for column, name in enumerate(names):
                self.inputs[name] = matrix[:, column]
            self.packs.append((names, matrix))
        return self

    def select(self, index: torch.Tensor) -> TensorTable:
        """Return the rows at `index` (int64 positions, 0..len-1), in that order.

        This runs once per training batch, so it skips the row-count check (the rows of a
        valid table picked by one index are valid), moves `index` to each device once and
        gathers each packed matrix at once.
        """
        positions = index.detach().to("cpu").numpy()
        on_device = {index.device: index}

        def take(t: torch.Tensor) -> torch.Tensor:
            at = on_device.get(t.device)
            if at is None:
                at = on_device[t.device] = index.to(t.device, non_blocking=True)
            return t[at]

        gathered: dict[str, torch.Tensor] = {}
        for names, matrix in self.packs:
            gathered.update(zip(names, take(matrix).unbind(1), strict=True))
        picked = object.__new__(TensorTable)
        picked.inputs = {
            name: gathered[name] if name in gathered else take(t) for name, t in self.inputs.items()
        }
        picked.targets = {name: take(t) for name, t in self.targets.items()}
        picked.rows = self.rows[positions]
        picked.packs = []
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
