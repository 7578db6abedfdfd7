"""Interaction tables: who interacted with what (and how much, and when), as integer indices.

Reads CSV / Parquet / JSONL tables with a header through `megalith.data.sources`, and the
header-less layouts public rating datasets ship in: `::`-separated lines (`1::1193::5::978300760`)
and tab- or comma-separated numbers (`196\t242\t3\t881250949`), whose columns are, in order,
user, item, rating, timestamp.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from megalith.data.sources import load_table
from megalith.errors import DataError, did_you_mean
from megalith.paths import check_readable
from megalith.recommend.settings import RecommendConfig

_TABLE_SUFFIXES = (".parquet", ".jsonl", ".json")


@dataclass(frozen=True)
class Interactions:
    """An interactions table encoded as indices, rows in the file's order.

    Attributes:
        users: int64 (N,), index into `user_ids`.
        items: int64 (N,), index into `item_ids`.
        ratings: float32 (N,), or None without a rating column.
        times: float64 (N,), the timestamp (seconds for dates), or the row number without one.
        user_ids / item_ids: the ids as written in the file (text), sorted.
    """

    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray | None
    times: np.ndarray
    user_ids: list[str]
    item_ids: list[str]

    def __len__(self) -> int:
        return len(self.users)

    def subset(self, rows: np.ndarray) -> Interactions:
        """The interactions at `rows` (indices or a boolean mask), same vocabularies."""
        ratings = self.ratings[rows] if self.ratings is not None else None
        return Interactions(
            self.users[rows],
            self.items[rows],
            ratings,
            self.times[rows],
            self.user_ids,
            self.item_ids,
        )


def read_interactions(source: str | Path, config: RecommendConfig) -> tuple[pd.DataFrame, str]:
    """The raw table of `source` and how errors name it.

    `builtin:planted_interactions` is generated (see `megalith.recommend.synthetic`).

    Raises:
        DataError: the file is missing or unreadable, or a header-less file has fewer than
            two or more than four columns.
    """
    if str(source).startswith("builtin:"):
        return _builtin(str(source)), str(source)
    path = Path(source)
    if path.suffix.lower() in _TABLE_SUFFIXES or path.is_dir():
        table = load_table(str(path))
        return table.frame, table.origin
    check_readable(path, "interactions file", hint="point data.source at the interactions table")
    with path.open(encoding="utf-8", errors="replace") as handle:
        first = handle.readline().strip()
    separator = _headerless_separator(first)
    if separator is None:
        table = load_table(str(path), format="csv")
        return table.frame, table.origin
    frame = pd.read_csv(path, sep=separator, header=None, engine="python", dtype=str)
    if not 2 <= frame.shape[1] <= 4:
        raise DataError(
            f"{path}: a file without a header must hold 2 to 4 columns (user, item, rating, "
            f"timestamp), found {frame.shape[1]}; add a header row naming them"
        )
    names = [config.user, config.item, config.rating or "rating", config.timestamp or "timestamp"]
    frame.columns = names[: frame.shape[1]]
    return frame, str(path)


BUILTIN_INTERACTIONS = {
    "planted_interactions": "100k interactions of 1,000 users with 1,700 items, planted "
    "16-factor tastes and Zipf popularity (generated; sized like the common public ratings set)"
}
"""`data.source: builtin:NAME` for recommenders."""


def _builtin(source: str) -> pd.DataFrame:
    from megalith.recommend.synthetic import planted_interactions

    name = source.removeprefix("builtin:")
    if name not in BUILTIN_INTERACTIONS:
        raise DataError(
            f"unknown built-in interactions '{source}'{did_you_mean(name, BUILTIN_INTERACTIONS)};"
            f" recommenders know {', '.join('builtin:' + n for n in BUILTIN_INTERACTIONS)}"
        )
    return planted_interactions(1000, 1700, 100, dim=16, strength=2.0, skew=1.0, seed=1)


def _headerless_separator(line: str) -> str | None:
    """'::' for MovieLens-1M style lines; tab or ',' when every field is a number; else None."""
    if "::" in line:
        return "::"
    for separator in ("\t", ","):
        fields = line.split(separator)
        if len(fields) >= 2 and all(_is_number(field) for field in fields):
            return separator
    return None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def encode_interactions(frame: pd.DataFrame, config: RecommendConfig, origin: str) -> Interactions:
    """Ids -> indices (vocabularies over the whole table: the catalogue), ratings and times as
    numbers; one row per (user, item): its latest (a re-rating replaces the earlier rating,
    and `min_rating` judges the latest), so no held-out pair is also in train.

    Raises:
        DataError: a named column is absent, or a row has no user / item, a rating that is
            not a number or a timestamp that is neither a number nor a date (the row is named).
    """
    _check_columns(frame, config, origin)
    users = entity_ids(frame[config.user], config.user, origin)
    items = entity_ids(frame[config.item], config.item, origin)
    ratings = None
    if config.rating is not None:
        ratings = _numbers(frame[config.rating], config.rating, origin).astype(np.float32)
    if config.timestamp is not None:
        times = _times(frame[config.timestamp], config.timestamp, origin)
    else:
        times = np.arange(len(frame), dtype=np.float64)
    # one row per (user, item), its latest, before anything else: a pair held out for test
    # must not also sit in train (a re-rated or re-watched item would leak its answer)
    keep = np.zeros(len(frame), dtype=bool)
    keep[_latest_per_pair(users, items, times)] = True
    if config.feedback == "implicit" and config.min_rating is not None and ratings is not None:
        keep &= ratings >= config.min_rating
    if not keep.any():
        raise DataError(f"{origin}: no interactions left (recommend.min_rating drops them all)")
    user_ids, user_index = np.unique(users[keep], return_inverse=True)
    item_ids, item_index = np.unique(items[keep], return_inverse=True)
    return Interactions(
        user_index.astype(np.int64),
        item_index.astype(np.int64),
        ratings[keep] if ratings is not None else None,
        times[keep],
        [str(u) for u in user_ids],
        [str(i) for i in item_ids],
    )


def _check_columns(frame: pd.DataFrame, config: RecommendConfig, origin: str) -> None:
    named: dict[str, str | None] = {"user": config.user, "item": config.item}
    named |= {"rating": config.rating, "timestamp": config.timestamp}
    for key, column in named.items():
        if column is not None and column not in frame.columns:
            hint = did_you_mean(column, [str(c) for c in frame.columns])
            raise DataError(
                f"{origin}: no column '{column}' (recommend.{key}){hint}; the table has "
                f"{', '.join(map(str, frame.columns))}"
            )
    if len(frame) == 0:
        raise DataError(f"{origin}: the interactions table has no rows")


def _first_bad_row(bad: np.ndarray, column: str, origin: str, what: str) -> DataError:
    row = int(np.flatnonzero(bad)[0])
    return DataError(f"{origin}: row {row + 1}, column '{column}': {what}")


def entity_ids(column: pd.Series, name: str, origin: str) -> np.ndarray:
    """A column of user or item ids as text, as the interactions spell them ('3.0' -> '3').

    Raises:
        DataError: a row has no id (the first such row is named).
    """
    missing = column.isna().to_numpy()
    if missing.any():
        raise _first_bad_row(missing, name, origin, "the id is missing; fill or drop the row")
    if pd.api.types.is_float_dtype(column) and (column % 1 == 0).all():
        column = column.astype(np.int64)  # 3.0 and 3 are the same id
    return column.astype(str).str.strip().to_numpy()


def _numbers(column: pd.Series, name: str, origin: str) -> np.ndarray:
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        raise _first_bad_row(
            bad, name, origin, f"'{column.iloc[int(np.flatnonzero(bad)[0])]}' is not a number"
        )
    return values


def _times(column: pd.Series, name: str, origin: str) -> np.ndarray:
    numbers = pd.to_numeric(column, errors="coerce")
    if numbers.notna().all():
        return numbers.to_numpy(dtype=np.float64)
    dates = pd.to_datetime(column, errors="coerce", utc=True, format="mixed")
    bad = dates.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        value = column.iloc[row]
        what = (
            f"'{value}' is a number where other rows hold dates; write every timestamp alike"
            if pd.notna(numbers.iloc[row])
            else f"'{value}' is neither a number nor a date"
        )
        raise _first_bad_row(bad, name, origin, what)
    return (dates - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy(dtype=np.float64)


def _latest_per_pair(users: np.ndarray, items: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Row indices keeping, for each repeated (user, item), its latest interaction (ties: the
    later row), in file order: a re-rated or re-watched item is one interaction, its last."""
    _, user_codes = np.unique(users, return_inverse=True)
    _, item_codes = np.unique(items, return_inverse=True)
    order = np.lexsort((np.arange(len(users)), times, item_codes, user_codes))
    pairs = user_codes[order].astype(np.int64) * (int(item_codes.max()) + 1) + item_codes[order]
    last = np.ones(len(order), dtype=bool)
    last[:-1] = pairs[1:] != pairs[:-1]
    return np.sort(order[last])
