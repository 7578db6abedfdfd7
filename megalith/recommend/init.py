"""`megalith init` for interaction tables: recognise the user / item / rating / timestamp
columns by name and write a recommender config (the settings measured in
benchmarks/recommend_baselines.py)."""

from __future__ import annotations

import re
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


def recommender_init_text(data: str, *, name: str | None, source: str) -> str | None:
    """The YAML `megalith init DATA` writes when DATA is an interactions table (user and item
    columns by name, or a header-less user / item / rating / timestamp file), else None.

    Raises:
        DataError: the file cannot be read.
    """
    from pathlib import Path

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
    head = (
        "# A recommender of the interactions in this table (see docs/recommend.md).\n"
        "# Train it with: megalith train CONFIG; then megalith recommend RUN --users ID,...\n"
    )
    return head + yaml.safe_dump(config, sort_keys=False)
