"""Interaction tables in every layout they ship in, encoded as indices, with clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from megalith.errors import DataError
from megalith.recommend.interactions import encode_interactions, read_interactions
from megalith.recommend.settings import RecommendConfig

ROWS = [("u1", "a", 5, 100), ("u1", "b", 3, 200), ("u2", "a", 4, 150)]


def _read(path: Path, **settings: object) -> tuple[pd.DataFrame, RecommendConfig]:
    config = RecommendConfig.model_validate(settings)
    frame, _ = read_interactions(path, config)
    return frame, config


def _check(frame: pd.DataFrame, config: RecommendConfig) -> None:
    data = encode_interactions(frame, config, "t")
    assert data.user_ids == ["u1", "u2"] and data.item_ids == ["a", "b"]
    assert data.users.tolist() == [0, 0, 1] and data.items.tolist() == [0, 1, 0]
    assert data.ratings is not None and data.ratings.tolist() == [5, 3, 4]
    assert data.times.tolist() == [100, 200, 150]


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("ratings.dat", "".join(f"{u}::{i}::{r}::{t}\n" for u, i, r, t in ROWS)),
        ("u.data", "".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in ROWS)),
        ("plain.csv", "".join(f"{u},{i},{r},{t}\n" for u, i, r, t in ROWS)),
    ],
)
def test_headerless_layouts_read_as_user_item_rating_timestamp(
    tmp_path: Path, name: str, text: str
) -> None:
    if name != "ratings.dat":  # numeric-only lines are what marks a header-less file
        text = text.replace("u1", "1").replace("u2", "2").replace("\ta", "\t7").replace(",a", ",7")
        text = text.replace("\tb", "\t8").replace(",b", ",8")
    path = tmp_path / name
    path.write_text(text)
    frame, config = _read(path, rating="rating", timestamp="timestamp")
    assert list(frame.columns) == ["user", "item", "rating", "timestamp"]
    data = encode_interactions(frame, config, str(path))
    assert len(data) == 3 and data.times.tolist() == [100, 200, 150]
    assert data.ratings is not None and data.ratings.tolist() == [5, 3, 4]


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_tables_with_a_header(tmp_path: Path, suffix: str) -> None:
    frame = pd.DataFrame(ROWS, columns=["customer", "product", "stars", "when"])
    path = tmp_path / f"t{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_json(path, orient="records", lines=True)
    read, config = _read(path, user="customer", item="product", rating="stars", timestamp="when")
    _check(read, config)


def test_dates_become_seconds_and_repeats_keep_the_latest(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "user": [1, 1, 1],
            "item": [9, 9, 8],
            "time": ["2024-01-02", "2024-01-03", "2024-01-01"],
        }
    )
    data = encode_interactions(frame, RecommendConfig(timestamp="time"), "t")
    assert data.items.tolist() == [1, 0]  # the second (later) 9, then 8, in file order
    assert data.times[0] - data.times[1] == 2 * 86400


def test_min_rating_drops_weak_interactions() -> None:
    frame = pd.DataFrame(ROWS, columns=["user", "item", "rating", "t"])
    data = encode_interactions(frame, RecommendConfig(rating="rating", min_rating=4), "t")
    assert len(data) == 2 and np.all(data.ratings == [5, 4])


@pytest.mark.parametrize(
    ("frame", "settings", "message"),
    [
        (pd.DataFrame({"usr": [1], "item": [2]}), {}, r"no column 'user' \(recommend.user\)"),
        (pd.DataFrame({"user": [1, None], "item": [2, 3]}), {}, "row 2, column 'user'"),
        (
            pd.DataFrame({"user": [1, 2], "item": [2, 3], "r": [1, "x"]}),
            {"rating": "r"},
            "row 2, column 'r': 'x' is not a number",
        ),
        (
            pd.DataFrame({"user": [1], "item": [2], "t": ["yesterday"]}),
            {"timestamp": "t"},
            "neither a number nor a date",
        ),
        (
            pd.DataFrame({"user": [1, 1], "item": [2, 3], "t": ["2024-01-01", "100"]}),
            {"timestamp": "t"},
            "row 2, column 't': '100' is a number where other rows hold dates",
        ),
    ],
)
def test_bad_tables_name_the_column_and_row(
    frame: pd.DataFrame, settings: dict[str, str], message: str
) -> None:
    with pytest.raises(DataError, match=message):
        encode_interactions(frame, RecommendConfig.model_validate(settings), "t.csv")


def test_a_headerless_file_with_too_many_columns_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.dat"
    path.write_text("1::2::3::4::5\n")
    with pytest.raises(DataError, match="2 to 4 columns"):
        _read(path)
