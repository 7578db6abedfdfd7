"""Built-in datasets: each loads offline with its declared columns, target and shape."""

from __future__ import annotations

import numpy as np
import pytest

from megalith.data.builtin import BUILTIN_DATASETS, load_builtin
from megalith.errors import DataError

EXPECTED_SHAPES = {
    "digits": (1797, 2),
    "digits_table": (1797, 65),
    "iris": (150, 5),
    "wine": (178, 14),
    "breast_cancer": (569, 31),
    "diabetes": (442, 11),
    "synthetic_classification": (1000, 8),
    "synthetic_regression": (1000, 5),
    "docstrings": (None, 2),
    "python_stdlib": (None, 2),
    "number_words": (6000, 2),  # rows depend on the Python version's standard library
}


@pytest.mark.parametrize("name", sorted(BUILTIN_DATASETS))
def test_every_dataset_has_its_declared_columns(name: str) -> None:
    dataset = BUILTIN_DATASETS[name]
    frame = load_builtin(name)
    rows, columns = EXPECTED_SHAPES[name]
    assert frame.shape == (rows or len(frame), columns)
    assert frame.index.tolist() == list(range(len(frame)))
    declared = [f["name"] for f in dataset.inputs + dataset.outputs]
    assert set(declared) <= set(frame.columns)
    assert [f["name"] for f in dataset.outputs] == [dataset.target]
    assert frame[dataset.target].notna().all()
    if dataset.outputs[0]["type"] == "text" and dataset.inputs:
        assert dataset.arch == "seq2seq"
    elif dataset.outputs[0]["type"] == "text":
        assert dataset.arch == "gpt" and dataset.inputs == []
    else:
        has_images = any(f["type"] == "image" for f in dataset.inputs)
        assert dataset.arch == ("cnn" if has_images else "mlp")


def test_every_dataset_is_listed() -> None:
    assert set(BUILTIN_DATASETS) == set(EXPECTED_SHAPES)


def test_digits_images_are_uint8_8x8_scaled_to_255() -> None:
    frame = load_builtin("digits")
    first = frame["image"].iloc[0]
    assert isinstance(first, np.ndarray) and first.dtype == np.uint8 and first.shape == (8, 8)
    stacked = np.stack(frame["image"].to_list())
    assert stacked.max() == 255 and stacked.min() == 0
    assert set(np.unique(stacked).tolist()) <= {round(v * 255 / 16) for v in range(17)}
    assert sorted(frame["label"].unique().tolist()) == list(range(10))


def test_digits_table_matches_digits() -> None:
    table, images = load_builtin("digits_table"), load_builtin("digits")
    assert [f"px{i}" for i in range(64)] == list(table.columns[:64])
    pixel = int(table["px10"].iloc[5])
    assert round(pixel * 255 / 16) == images["image"][5].reshape(-1)[10]
    assert (table["label"] == images["label"]).all()


def test_class_labels_are_strings() -> None:
    assert set(load_builtin("iris")["species"]) == {"setosa", "versicolor", "virginica"}
    assert set(load_builtin("breast_cancer")["diagnosis"]) == {"malignant", "benign"}
    assert load_builtin("wine")["cultivar"].nunique() == 3


def test_diabetes_is_regression_with_a_binary_sex() -> None:
    frame = load_builtin("diabetes")
    assert frame["progression"].dtype.kind == "f" and frame["progression"].nunique() > 100
    assert frame["sex"].nunique() == 2


def test_synthetic_classification_is_messy_and_deterministic() -> None:
    frame = load_builtin("synthetic_classification")
    assert frame.equals(load_builtin("synthetic_classification"))
    assert frame["age"].isna().sum() > 0
    assert frame["customer_id"].is_unique
    assert frame["source"].nunique() == 1
    assert set(frame["member"]) == {"yes", "no"}
    assert set(frame["label"]) == {"low", "mid", "high"}


def test_synthetic_classification_is_learnable() -> None:
    from sklearn.linear_model import LogisticRegression

    frame = load_builtin("synthetic_classification")
    features = np.column_stack(
        [
            frame["score"],
            frame["age"].fillna(frame["age"].mean()),
            frame["member"] == "yes",
            frame["city"] == "paris",
            frame["city"] == "lima",
        ]
    ).astype(float)
    model = LogisticRegression(max_iter=1000).fit(features[:800], frame["label"][:800])
    assert model.score(features[800:], frame["label"][800:]) > 0.6  # chance is 1/3


def test_synthetic_regression_target_depends_on_features() -> None:
    frame = load_builtin("synthetic_regression")
    assert frame["y"].std() > 0.5
    by_region = frame.groupby("region")["y"].mean()
    assert by_region["north"] - by_region["south"] > 1.0


def test_unknown_name_suggests_and_lists() -> None:
    with pytest.raises(DataError) as caught:
        load_builtin("digit")
    message = str(caught.value)
    assert "builtin:digit'" in message and "did you mean 'digits'" in message
    assert "iris" in message and "synthetic_regression" in message


def test_numbers_in_words() -> None:
    from megalith.data.builtin import number_in_words

    assert number_in_words(0) == "zero"
    assert number_in_words(40) == "forty"
    assert number_in_words(101) == "one hundred one"
    assert number_in_words(20015) == "twenty thousand fifteen"
    assert number_in_words(999999) == "nine hundred ninety nine thousand nine hundred ninety nine"
    frame = load_builtin("number_words")
    assert frame["number"].is_unique
    assert (frame["words"] == frame["number"].astype(int).map(number_in_words)).all()
