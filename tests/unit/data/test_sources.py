"""load_table: every source kind round-trips, and every failure names the path and what to do."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from megalith.data.sources import load_table
from megalith.errors import DataError


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "size": [1.5, 2.0, np.nan, 4.25],
            "count": [1, 2, 3, 4],
            "color": ["red", "blue", None, "red"],
            "label": ["a", "b", "a", "b"],
        }
    )


def _check_round_trip(loaded: pd.DataFrame) -> None:
    expected = _frame()
    assert list(loaded.columns) == list(expected.columns)
    assert isinstance(loaded.index, pd.RangeIndex) and loaded.index.start == 0
    np.testing.assert_allclose(loaded["size"], expected["size"])
    assert loaded["count"].tolist() == [1, 2, 3, 4]
    assert loaded["color"].isna().tolist() == [False, False, True, False]
    assert loaded["label"].tolist() == ["a", "b", "a", "b"]


def test_csv_round_trip_strips_column_names(tmp_path: Path) -> None:
    frame = _frame().rename(columns={"size": " size "})
    frame.to_csv(tmp_path / "t.csv", index=False)
    table = load_table("t.csv", relative_to=tmp_path)
    _check_round_trip(table.frame)
    assert table.base_dir == tmp_path
    assert table.origin == str(tmp_path / "t.csv")
    assert table.frame["count"].dtype.kind == "i"


def test_tsv_parquet_and_jsonl_round_trip(tmp_path: Path) -> None:
    _frame().to_csv(tmp_path / "t.tsv", sep="\t", index=False)
    _frame().to_parquet(tmp_path / "t.parquet")
    _frame().to_json(tmp_path / "t.jsonl", orient="records", lines=True)
    for name in ("t.tsv", "t.parquet", "t.jsonl"):
        _check_round_trip(load_table(str(tmp_path / name)).frame)


def test_parquet_with_a_custom_index_gets_a_range_index(tmp_path: Path) -> None:
    _frame().set_index(pd.Index([10, 11, 12, 13])).to_parquet(tmp_path / "t.pq")
    loaded = load_table(str(tmp_path / "t.pq")).frame
    assert loaded.index.tolist() == [0, 1, 2, 3]
    assert list(loaded.columns) == list(_frame().columns)


def test_json_array_and_blank_jsonl_lines(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text('[{"x": 1, "y": "p"}, {"x": 2, "y": "q"}]')
    (tmp_path / "b.ndjson").write_text('{"x": 1}\n\n{"x": 2, "y": "q"}\n')
    assert load_table(str(tmp_path / "a.json")).frame["x"].tolist() == [1, 2]
    b = load_table(str(tmp_path / "b.ndjson")).frame
    assert b["x"].tolist() == [1, 2] and b["y"].isna().tolist() == [True, False]


def test_explicit_format_overrides_the_suffix(tmp_path: Path) -> None:
    _frame().to_csv(tmp_path / "t.txt", index=False)
    _check_round_trip(load_table(str(tmp_path / "t.txt"), format="csv").frame)


def _png(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((4, 4), value, dtype=np.uint8)).save(path)


def test_image_folder_lists_classes_sorted(tmp_path: Path) -> None:
    root = tmp_path / "pics"
    _png(root / "dog" / "b.png", 1)
    _png(root / "dog" / "a.PNG", 2)
    _png(root / "cat" / "x.png", 3)
    _png(root / "cat" / "nested" / "y.png", 4)
    (root / "cat" / "notes.txt").write_text("not an image")
    _png(root / ".hidden" / "z.png", 5)
    table = load_table(str(root))
    assert table.frame["image"].tolist() == [
        "cat/nested/y.png",
        "cat/x.png",
        "dog/a.PNG",
        "dog/b.png",
    ]
    assert table.frame["label"].tolist() == ["cat", "cat", "dog", "dog"]
    assert table.base_dir == root
    assert (table.base_dir / table.frame["image"][0]).is_file()


def test_builtin_source() -> None:
    table = load_table("builtin:iris")
    assert table.origin == "builtin:iris" and table.base_dir is None
    assert len(table.frame) == 150


def _error(tmp_path: Path, source: str, **kwargs: str) -> str:
    with pytest.raises(DataError) as caught:
        load_table(source, relative_to=tmp_path, **kwargs)
    return str(caught.value)


def test_missing_file_names_the_path_tried(tmp_path: Path) -> None:
    message = _error(tmp_path, "nope.csv")
    assert str(tmp_path / "nope.csv") in message and "not found" in message


def test_unknown_suffix_lists_supported_and_data_format(tmp_path: Path) -> None:
    (tmp_path / "t.xlsx").write_text("x")
    message = _error(tmp_path, "t.xlsx")
    assert "t.xlsx" in message and ".csv" in message and ".parquet" in message
    assert "data.format" in message


def test_csv_row_with_wrong_field_count_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n3,4,5\n6,7\n")
    message = _error(tmp_path, "bad.csv")
    assert "bad.csv" in message and "line 3" in message


@pytest.mark.parametrize("text", ["", "a,b\n"])
def test_empty_csv(tmp_path: Path, text: str) -> None:
    (tmp_path / "empty.csv").write_text(text)
    message = _error(tmp_path, "empty.csv")
    assert "empty.csv" in message and ("empty" in message or "no rows" in message)


def test_malformed_jsonl_line(tmp_path: Path) -> None:
    (tmp_path / "bad.jsonl").write_text('{"a": 1}\n{"a": 2}\n{"a": \n')
    message = _error(tmp_path, "bad.jsonl")
    assert "bad.jsonl" in message and "line 3" in message


def test_jsonl_line_that_is_not_an_object(tmp_path: Path) -> None:
    (tmp_path / "bad.jsonl").write_text('{"a": 1}\n[1, 2]\n')
    assert "line 2" in _error(tmp_path, "bad.jsonl")


def test_empty_jsonl(tmp_path: Path) -> None:
    (tmp_path / "e.jsonl").write_text("\n\n")
    assert "e.jsonl" in _error(tmp_path, "e.jsonl")


def test_corrupt_parquet(tmp_path: Path) -> None:
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 this is not parquet at all")
    message = _error(tmp_path, "bad.parquet")
    assert "bad.parquet" in message and "Parquet" in message


def test_folder_without_class_subfolders(tmp_path: Path) -> None:
    _png(tmp_path / "flat" / "a.png", 1)
    message = _error(tmp_path, "flat")
    assert "flat" in message and "subfolder" in message


def test_folder_with_classes_but_no_images(tmp_path: Path) -> None:
    (tmp_path / "pics" / "cat").mkdir(parents=True)
    (tmp_path / "pics" / "cat" / "a.txt").write_text("x")
    message = _error(tmp_path, "pics")
    assert "pics" in message and "no images" in message and ".png" in message


def test_folder_with_a_table_format(tmp_path: Path) -> None:
    (tmp_path / "pics").mkdir()
    assert "data.format" in _error(tmp_path, "pics", format="csv")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads anything")
def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "secret.csv"
    path.write_text("a\n1\n")
    path.chmod(0)
    try:
        message = _error(tmp_path, "secret.csv")
    finally:
        path.chmod(0o600)
    assert "secret.csv" in message and "ermission" in message


def test_duplicate_column_names_after_trimming(tmp_path: Path) -> None:
    (tmp_path / "dup.csv").write_text("a, a\n1,2\n")
    message = _error(tmp_path, "dup.csv")
    assert "dup.csv" in message and "'a'" in message


def test_permission_denied_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same path as test_unreadable_file, for runs as root (who may read anything)."""
    (tmp_path / "secret.csv").write_text("a\n1\n")

    def denied(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(pd, "read_csv", denied)
    message = _error(tmp_path, "secret.csv")
    assert "secret.csv" in message and "Permission denied" in message
