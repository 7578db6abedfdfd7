"""How error messages name the rows and cells of a table (no torch: the runtime uses these too)."""

from __future__ import annotations

from collections.abc import Hashable, Iterable

import numpy as np


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
