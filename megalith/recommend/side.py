"""Side tables: user and item features joined to the interactions by id.

`data.users` / `data.items` name a table with one row per user / item; its id column is the
interactions' (`recommend.user` / `recommend.item`), and the columns listed in
`recommend.user_features` / `recommend.item_features` are encoded by the ordinary feature
encoders (megalith.data.features: number, binary, category, text, set). The encoders are fitted
on the rows of users / items with train interactions and saved as JSON in the run directory
(user_features.json, item_features.json); every row is then encoded the same way, and the
encoded rows travel with the model's weights (a two_tower keeps them as buffers).

Users and items that have a row but no interaction join the vocabularies: a new item with
features can be recommended, a new user with features is answered by the user tower.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from megalith.data.features import InputFeature
from megalith.data.preprocess import Preprocessor
from megalith.data.sources import load_table
from megalith.data.specs import InputSpec
from megalith.errors import ConfigError, DataError, did_you_mean
from megalith.recommend.interactions import Interactions, entity_ids

Side = Literal["user", "item"]
SIDES: tuple[Side, Side] = ("user", "item")
FEATURES_FILE = {"user": "user_features.json", "item": "item_features.json"}
"""The fitted encoders of each side, in the run directory."""
_TABLE_KEY = {"user": "users", "item": "items"}


@dataclass
class SideFeatures:
    """One side's fitted encoders and, while training, every entity's encoded row.

    Attributes:
        preprocessor: the encoders of the side's feature columns (saved as JSON).
        arrays: feature name -> (n_entities, ...) in vocabulary order, dtypes and shapes as in
            megalith.data.specs; empty for a loaded run (the rows are in the weights).
    """

    preprocessor: Preprocessor
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    def specs(self, side: Side) -> list[InputSpec]:
        """The features as model inputs, named `user.COLUMN` / `item.COLUMN`."""
        return [replace(spec, name=f"{side}.{spec.name}") for spec in self.preprocessor.input_specs]

    def encode(self, frame: pd.DataFrame, origin: str) -> dict[str, np.ndarray]:
        """The feature columns of new rows (e.g. new users), encoded as in training.

        Raises:
            DataError: a feature column is absent, or a value cannot be encoded.
        """
        return self.preprocessor.encode_inputs(frame, base_dir=None, origin=origin)


@dataclass(frozen=True)
class SideTable:
    """A side table as read: the frame (index: file rows) and where each id's row is."""

    frame: pd.DataFrame
    origin: str
    base_dir: Path | None
    rows: dict[str, int]
    """id -> position in `frame`."""


def check_side_settings(
    arch: str, table: str | None, features: Sequence[object], side: Side
) -> None:
    """A side table and its feature list come together, and only a two_tower reads them.

    Raises:
        ConfigError: naming the key to add or remove.
    """
    key = _TABLE_KEY[side]
    if table is not None and not features:
        raise ConfigError(
            f"data.{key} is set but recommend.{side}_features is empty: list the columns of "
            f"{table} to use, e.g. [{{name: genres, type: set, separator: '|'}}]"
        )
    if features and table is None:
        raise ConfigError(
            f"recommend.{side}_features needs data.{key}: the table holding those columns"
        )
    if features and arch != "two_tower":
        raise ConfigError(
            f"recommend.{side}_features are read by model.arch two_tower (its {side} tower); "
            f"model.arch {arch} sees ids only: use two_tower or leave the features out"
        )


def read_side_table(path: str, id_column: str, side: Side) -> SideTable:
    """Read a side table and index its ids.

    Raises:
        DataError: the file cannot be read, has no `id_column`, a row has no id, or an id has
            two rows (both rows are named).
    """
    where = Path(path).expanduser()
    if not path.startswith("builtin:") and not os.path.lexists(where):
        tried = "" if where.is_absolute() else f" (looked for {where.absolute()})"
        key = f"data.{_TABLE_KEY[side]}"
        raise DataError(f"{key} not found: {path}{tried}; check {key} and the cwd")
    table = load_table(path)
    frame, origin = table.frame, table.origin
    if id_column not in frame.columns:
        columns = [str(c) for c in frame.columns]
        raise DataError(
            f"{origin}: no column '{id_column}' (the recommend.{side} id that joins "
            f"data.{_TABLE_KEY[side]} to the interactions){did_you_mean(id_column, columns)}; "
            f"the table has {', '.join(columns)}"
        )
    ids = entity_ids(frame[id_column], id_column, origin)
    first: dict[str, int] = {}
    for position, value in enumerate(map(str, ids)):
        if value in first:
            raise DataError(
                f"{origin}: rows {first[value] + 1} and {position + 1}, column '{id_column}': "
                f"the {side} '{value}' appears twice; keep one row per {side}"
            )
        first[value] = position
    return SideTable(frame, origin, table.base_dir, first)


def join_vocabulary(data: Interactions, table: SideTable, side: Side, column: str) -> Interactions:
    """`data` with the side table's ids added to its `side` vocabulary (sorted, as the
    interactions' own), the interactions re-indexed.

    Raises:
        DataError: an id of the interactions has no row in the side table (a few are named).
    """
    known = np.array(data.user_ids if side == "user" else data.item_ids, dtype=object)
    missing = [str(value) for value in known if value not in table.rows]
    if missing:
        shown = ", ".join(f"'{value}'" for value in missing[:5])
        raise DataError(
            f"{table.origin}: {len(missing)} {side} id(s) of the interactions have no row here "
            f"(column '{column}'), e.g. {shown}; add a row for each (feature cells may be empty)"
        )
    vocabulary = sorted(set(known.tolist()) | set(table.rows))
    position = {value: i for i, value in enumerate(vocabulary)}
    remap = np.array([position[value] for value in known], dtype=np.int64)
    if side == "user":
        return replace(data, users=remap[data.users], user_ids=vocabulary)
    return replace(data, items=remap[data.items], item_ids=vocabulary)


def fit_side_features(
    table: SideTable,
    features: Sequence[InputFeature],
    vocabulary: Sequence[str],
    fit_on: np.ndarray,
    side: Side,
) -> SideFeatures:
    """Fit the encoders on the rows of entities `fit_on` (indices into `vocabulary`: those with
    train interactions; every row when there are none) and encode every entity's row.

    Raises:
        DataError: a feature column is absent (naming recommend.SIDE_features) or a value
            cannot be encoded (file, column, row).
    """
    columns = [str(column) for column in table.frame.columns]
    absent = [feature.name for feature in features if feature.name not in table.frame.columns]
    if absent:  # the key to fix is the feature list, not a model's inputs
        named = ", ".join(f"'{name}'{did_you_mean(name, columns)}" for name in absent)
        raise DataError(
            f"{table.origin}: no column {named} (listed in recommend.{side}_features); the "
            f"table has {', '.join(columns)}"
        )
    positions = np.array([table.rows[value] for value in vocabulary], dtype=np.int64)
    fit_rows = positions[fit_on] if len(fit_on) else positions
    preprocessor = Preprocessor.fit(
        features,
        [],
        table.frame.iloc[np.sort(fit_rows)],
        base_dir=table.base_dir,
        origin=table.origin,
    )
    arrays = preprocessor.encode_inputs(
        table.frame.iloc[positions], base_dir=table.base_dir, origin=table.origin
    )
    return SideFeatures(preprocessor, arrays)


def load_side_features(path: Path) -> dict[Side, SideFeatures]:
    """The fitted encoders a run directory holds (none for an id-only run).

    Raises:
        DataError: a features file is damaged.
    """
    found: dict[Side, SideFeatures] = {}
    for side in SIDES:
        file = path / FEATURES_FILE[side]
        if file.exists():
            found[side] = SideFeatures(Preprocessor.load(file))
    return found
