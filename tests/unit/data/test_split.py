"""split_table: sizes, determinism, stratification, split columns and empty-split errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from megalith.data.split import SplitConfig, split_notes, split_table
from megalith.errors import DataError


def _labels(counts: dict[str, int]) -> pd.DataFrame:
    labels = [label for label, count in counts.items() for _ in range(count)]
    return pd.DataFrame({"x": np.arange(len(labels)), "label": labels})


def test_sizes_round_to_nearest_and_cover_every_row_once() -> None:
    frame = pd.DataFrame({"x": np.arange(1797)})
    parts = split_table(frame, SplitConfig(val=0.1, test=0.1), seed=0)
    assert [len(parts[name]) for name in ("train", "val", "test")] == [1437, 180, 180]
    rows = np.concatenate([parts[name].index.to_numpy() for name in parts])
    assert sorted(rows.tolist()) == list(range(1797))


def test_index_labels_are_kept_and_rows_shuffled() -> None:
    frame = pd.DataFrame({"x": np.arange(200)}, index=np.arange(200) + 1000)
    parts = split_table(frame, SplitConfig(), seed=0)
    train = parts["train"]
    assert (train["x"].to_numpy() + 1000 == train.index.to_numpy()).all()
    assert not train.index.is_monotonic_increasing


def test_same_seed_same_split_and_config_seed_wins() -> None:
    frame = pd.DataFrame({"x": np.arange(100)})
    first = split_table(frame, SplitConfig(), seed=1)
    again = split_table(frame, SplitConfig(), seed=1)
    other = split_table(frame, SplitConfig(), seed=2)
    pinned = split_table(frame, SplitConfig(seed=1), seed=2)
    assert first["test"].index.tolist() == again["test"].index.tolist()
    assert first["test"].index.tolist() != other["test"].index.tolist()
    assert first["test"].index.tolist() == pinned["test"].index.tolist()


def test_stratified_split_keeps_class_proportions() -> None:
    frame = _labels({"a": 500, "b": 300, "c": 200})
    parts = split_table(frame, SplitConfig(val=0.1, test=0.2), seed=0, stratify_by="label")
    assert parts["test"]["label"].value_counts().to_dict() == {"a": 100, "b": 60, "c": 40}
    assert parts["val"]["label"].value_counts().to_dict() == {"a": 50, "b": 30, "c": 20}


def test_tiny_classes_go_to_train_and_missing_labels_are_a_group() -> None:
    frame = _labels({"a": 50, "b": 50, "rare": 2})
    frame.loc[[0, 1, 2, 3, 60, 61, 62, 63, 64, 65], "label"] = None
    parts = split_table(frame, SplitConfig(val=0.2, test=0.2), seed=0, stratify_by="label")
    assert (parts["train"]["label"] == "rare").sum() == 2
    assert parts["test"]["label"].isna().sum() == 2  # 10 missing * 0.2


def test_stratify_off_ignores_the_column() -> None:
    frame = _labels({"a": 90, "b": 10})
    config = SplitConfig(val=0.0, test=0.5, stratify=False)
    counts = [
        (split_table(frame, config, seed=s, stratify_by="label")["test"]["label"] == "b").sum()
        for s in range(20)
    ]
    assert len(set(counts)) > 1  # stratified, it would be exactly 5 every time


def test_zero_fraction_gives_an_empty_split() -> None:
    parts = split_table(pd.DataFrame({"x": range(10)}), SplitConfig(val=0, test=0.2), seed=0)
    assert len(parts["val"]) == 0 and len(parts["test"]) == 2


def test_fraction_that_rounds_to_no_rows_is_an_error() -> None:
    with pytest.raises(DataError) as caught:
        split_table(
            pd.DataFrame({"x": range(4)}), SplitConfig(val=0, test=0.1), seed=0, origin="t.csv"
        )
    message = str(caught.value)
    assert "t.csv" in message and "data.split.test=0.1" in message and "4 rows" in message


def test_no_train_rows_is_an_error() -> None:
    with pytest.raises(DataError, match="no train rows"):
        split_table(pd.DataFrame({"x": range(2)}), SplitConfig(val=0.4, test=0.4), seed=0)


def test_split_column_with_aliases_keeps_order() -> None:
    frame = pd.DataFrame(
        {"x": range(6), "fold": ["train", "Validation", "test ", "TRAIN", "dev", "Test"]}
    )
    parts = split_table(frame, SplitConfig(column="fold"), seed=0)
    assert parts["train"].index.tolist() == [0, 3]
    assert parts["val"].index.tolist() == [1, 4]
    assert parts["test"].index.tolist() == [2, 5]


def test_missing_split_column_names_it() -> None:
    frame = pd.DataFrame({"x": range(3), "fold": ["train", "val", "test"]})
    with pytest.raises(DataError) as caught:
        split_table(frame, SplitConfig(column="folds"), seed=0, origin="t.csv")
    assert "'folds'" in str(caught.value) and "did you mean 'fold'" in str(caught.value)


def test_unknown_split_values_name_values_and_rows() -> None:
    frame = pd.DataFrame({"fold": ["train", "val", "tset", "test", None]})
    with pytest.raises(DataError) as caught:
        split_table(frame, SplitConfig(column="fold"), seed=0, origin="t.csv")
    message = str(caught.value)
    assert "'fold'" in message and "'tset'" in message and "rows 3, 5" in message


def test_split_column_without_test_rows_and_test_0_is_an_error() -> None:
    frame = pd.DataFrame({"fold": ["train", "val", "train"]})
    with pytest.raises(DataError) as caught:
        split_table(frame, SplitConfig(column="fold", test=0), seed=0)
    message = str(caught.value)
    assert "no 'test' rows" in message and "set data.split.test (e.g. 0.1)" in message


def test_split_column_without_train_rows_is_an_error() -> None:
    frame = pd.DataFrame({"fold": ["val", "test", "val"]})
    with pytest.raises(DataError, match="no 'train' rows; mark some rows 'train'"):
        split_table(frame, SplitConfig(column="fold", val=0.2), seed=0)


def test_a_split_the_column_lacks_is_carved_from_train_stratified() -> None:
    frame = _labels({"a": 60, "b": 30, "c": 10})
    frame["fold"] = ["train", "train", "train", "train", "test"] * 20
    parts = split_table(frame, SplitConfig(column="fold", val=0.25), seed=0, stratify_by="label")
    train, val, test = parts["train"], parts["val"], parts["test"]
    assert test.index.tolist() == list(range(4, 100, 5))  # the column's test rows, untouched
    assert len(val) == 20 and len(train) == 60  # a quarter of the 80 train rows
    assert set(val.index).isdisjoint(train.index) and set(val.index) | set(train.index) == set(
        frame.index[frame["fold"] == "train"]
    )
    train_counts = frame.loc[frame["fold"] == "train", "label"].value_counts()
    assert val["label"].value_counts().to_dict() == (train_counts / 4).astype(int).to_dict()
    assert train.index.is_monotonic_increasing and val.index.is_monotonic_increasing
    again = split_table(frame, SplitConfig(column="fold", val=0.25), seed=0, stratify_by="label")
    assert again["val"].index.tolist() == val.index.tolist()


def test_a_column_lacking_val_and_test_carves_both() -> None:
    frame = pd.DataFrame({"x": range(40), "fold": ["train"] * 30 + ["TRAINING"] * 10})
    parts = split_table(frame, SplitConfig(column="fold", val=0.1, test=0.2), seed=0)
    assert (len(parts["train"]), len(parts["val"]), len(parts["test"])) == (28, 4, 8)
    assert split_notes(frame, SplitConfig(column="fold", val=0.1, test=0.2)) == [
        "split column 'fold' marks no val rows: data.split.val=0.1 of its train rows are used "
        "as val",
        "split column 'fold' marks no test rows: data.split.test=0.2 of its train rows are used "
        "as test",
    ]


def test_a_complete_split_column_ignores_the_fractions() -> None:
    frame = pd.DataFrame({"x": range(6), "fold": ["train", "val", "test"] * 2})
    parts = split_table(frame, SplitConfig(column="fold", val=0.5, test=0.3), seed=0)
    assert [len(parts[name]) for name in ("train", "val", "test")] == [2, 2, 2]
    assert split_notes(frame, SplitConfig(column="fold", val=0.5)) == []
