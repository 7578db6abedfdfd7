"""`megalith init` for interaction tables: recognise the user / item / rating / timestamp
columns by name and write a recommender config (the settings measured in
benchmarks/recommend_baselines.py)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

ROLE_NAMES = {
    "user": ("user", "userid", "uid", "customer", "customerid", "visitor", "visitorid", "member"),
    "item": (
        "item",
        "itemid",
        "iid",
        "movie",
        "movieid",
        "product",
        "productid",
        "song",
        "songid",
        "track",
        "trackid",
        "book",
        "bookid",
        "isbn",
        "artist",
        "artistid",
        "article",
        "articleid",
        "video",
        "videoid",
        "game",
        "gameid",
        "anime",
        "animeid",
        "business",
        "businessid",
        "recipe",
        "recipeid",
        "post",
        "postid",
    ),
    "rating": ("rating", "ratings", "score", "stars", "value", "preference"),
    "timestamp": (
        "timestamp",
        "time",
        "ts",
        "date",
        "datetime",
        "unixtime",
        "unixtimestamp",
        "created",
        "createdat",
        "when",
    ),
}
"""Column names (lower-cased, without '_', '-' or spaces) that say what a column holds."""


def _normalised(name: object) -> str:
    return re.sub(r"[\s_\-]", "", str(name).lower())


def interaction_columns(frame: pd.DataFrame) -> dict[str, str] | None:
    """{'user': col, 'item': col, and 'rating' / 'timestamp' when present}, or None when the
    table has no recognisable user and item columns (then it is not an interactions table)."""
    found: dict[str, str] = {}
    for column in frame.columns:
        key = _normalised(column)
        for role, names in ROLE_NAMES.items():
            if role not in found and key in names:
                found[role] = str(column)
                break
    if "user" not in found or "item" not in found:
        return None
    return found


def recommender_config(frame: pd.DataFrame, *, name: str, source: str) -> dict[str, Any]:
    """The config `megalith init` writes for an interactions table.

    Implicit feedback even when there are ratings (every interaction a positive: what the
    leave-last-out protocol with sampled negatives measures); matrix factorisation trained
    with the in-batch softmax and its logQ correction, which ranked best of the three losses
    on the three datasets of benchmarks/recommend_baselines.py (on Python's imports: full
    HR@10 0.40 against 0.26 with BCE and 4 negatives).

    Raises:
        ValueError: the table has no user and item columns (see `interaction_columns`).
    """
    columns = interaction_columns(frame)
    if columns is None:
        raise ValueError("no user and item columns")
    recommend: dict[str, Any] = {"user": columns["user"], "item": columns["item"]}
    if "rating" in columns:
        recommend["rating"] = columns["rating"]
    if "timestamp" in columns:
        recommend["timestamp"] = columns["timestamp"]
    recommend |= {"split": "leave_last_out", "loss": "softmax"}
    return {
        "name": re.sub(r"[^A-Za-z0-9_.-]", "-", name).strip("-.") or "recommender",
        "seed": 0,
        "data": {"source": source},
        "model": {"arch": "mf", "dim": 64},
        "recommend": recommend,
        "train": {
            **_schedule(len(frame)),
            "optimizer": {"name": "adamw", "lr": 0.005, "weight_decay": 0.1},
        },
    }


def _schedule(interactions: int) -> dict[str, int]:
    """Batches of 1,024 for 50k+ interactions (10 epochs: ~1,000 steps at 100k), smaller
    below; enough epochs for ~1,000 steps, at most 100."""
    batch_size = 1024
    while batch_size > 64 and interactions < batch_size * 50:
        batch_size //= 2
    steps_per_epoch = max(1, -(-interactions // batch_size))
    return {"epochs": min(100, max(10, -(-1000 // steps_per_epoch))), "batch_size": batch_size}


SIDE_TABLE_NAMES = {
    "item": ("items", "item", "item_features", "movies", "products", "books", "songs", "tracks"),
    "user": ("users", "user", "user_features", "customers", "members"),
}
"""File names (without suffix) `init` looks for next to an interactions table."""
_SIDE_SUFFIXES = (".csv", ".parquet", ".jsonl", ".tsv")
_SIDE_TYPES = ("number", "binary", "category", "text", "set")


def find_side_tables(
    interactions: Path, id_columns: dict[str, str], notices: list[str] | None = None
) -> dict[str, Path]:
    """Side tables next to `interactions`: a file named as in SIDE_TABLE_NAMES whose header
    holds the interactions' user / item id column (`id_columns`: side -> column). A file so
    named without that column is passed over, with a line in `notices` saying why."""
    from megalith.data.sources import load_table

    found: dict[str, Path] = {}
    for side, stems in SIDE_TABLE_NAMES.items():
        for stem in stems:
            for suffix in _SIDE_SUFFIXES:
                path = interactions.parent / f"{stem}{suffix}"
                if side in found or not path.is_file() or path == interactions:
                    continue
                columns = [str(column) for column in load_table(str(path)).frame.columns]
                if id_columns[side] in columns:
                    found[side] = path
                elif notices is not None:
                    notices.append(
                        f"{path.name}: not read as {side} features: it has no column "
                        f"'{id_columns[side]}' (the interactions' {side} id); rename its id "
                        "column to that to use it"
                    )
    return found


def side_features(path: Path, id_column: str, notices: list[str]) -> list[dict[str, Any]]:
    """The feature list `init` writes for a side table: its other columns typed as `init`
    types inputs (lists of names such as 'Action|Comedy' as sets split on '|')."""
    from megalith.data.infer_columns import infer_inputs
    from megalith.data.sources import load_table

    frame = load_table(str(path)).frame
    columns = [column for column in frame.columns if str(column) != id_column]
    features = [f for f in infer_inputs(frame, columns, notices) if f["type"] in _SIDE_TYPES]
    for feature in features:
        cells = frame[feature["name"]].dropna().astype(str)
        if feature["type"] == "set" and cells.str.contains("|", regex=False).any():
            feature["separator"] = "|"  # 'Science Fiction|Drama': two names, not three
    return features


def with_side_tables(
    config: dict[str, Any], tables: dict[str, Path], written: Callable[[str], str]
) -> list[str]:
    """Add found side tables to `config`: data.items / data.users, their features, and a
    two_tower (the family that reads them); returns notices for the user."""
    notices: list[str] = []
    recommend = config["recommend"]
    for side, path in tables.items():
        features = side_features(path, recommend[side], notices)
        if not features:
            continue
        config["data"]["items" if side == "item" else "users"] = written(str(path))
        recommend[f"{side}_features"] = features
        notices.append(f"{path}: {side} features {', '.join(f['name'] for f in features)}")
    if "user_features" in recommend or "item_features" in recommend:
        config["model"] = {"arch": "two_tower", "dim": 64}
    return notices


def recommender_init_text(
    data: str, *, name: str | None, source: str, written: Callable[[str], str] | None = None
) -> str | None:
    """The YAML `megalith init DATA` writes when DATA is an interactions table (user and item
    columns by name, or a header-less user / item / rating / timestamp file), else None.
    Side tables found next to it (`find_side_tables`) are added, with a two_tower to read
    them; `written` turns their paths into what the config should say (default: as found).

    Raises:
        DataError: a file cannot be read.
    """
    import yaml

    from megalith.recommend.interactions import BUILTIN_INTERACTIONS, read_interactions
    from megalith.recommend.settings import RecommendConfig

    builtin = data.removeprefix("builtin:") if data.startswith("builtin:") else None
    if (builtin is not None and builtin not in BUILTIN_INTERACTIONS) or Path(data).is_dir():
        return None
    frame, _ = read_interactions(data, RecommendConfig())
    if interaction_columns(frame) is None:
        return None
    config = recommender_config(frame, name=name or builtin or Path(data).stem, source=source)
    notes: list[str] = []
    if builtin is None:
        ids = {side: config["recommend"][side] for side in ("user", "item")}
        tables = find_side_tables(Path(data), ids, notes)
        notes += with_side_tables(config, tables, written or (lambda path: path))
    head = (
        "# A recommender of the interactions in this table (see docs/recommend.md).\n"
        "# Train it with: megalith train CONFIG; then megalith recommend RUN --users ID,...\n"
    )
    head += "".join(f"# {note}\n" for note in notes)
    return head + yaml.safe_dump(config, sort_keys=False)
