"""Baselines against scikit-learn run directly on the same split and the same inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn import metrics as sk
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from megalith.data.features import (
    BinaryInput,
    BinaryOutput,
    CategoryInput,
    CategoryOutput,
    NumberInput,
    NumberOutput,
    TextInput,
)
from megalith.data.preprocess import Preprocessor
from megalith.data.specs import InputSpec
from megalith.data.tensors import TensorTable
from megalith.evaluate.baselines import (
    Budget,
    affordable_rows,
    baseline_columns,
    fit_baselines,
)
from megalith.evaluate.linear_features import MAX_IMAGE_FEATURES, LinearFeatures, pooled_size

TRAIN_ROWS = 240


def _table(rows: int = 300, seed: int = 3) -> pd.DataFrame:
    """Three targets that inputs explain in part: a linear model gets some rows wrong."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(5, 2, rows), rng.normal(0, 1, rows)
    color = rng.choice(["red", "green", "blue", "grey"], rows, p=[0.4, 0.3, 0.2, 0.1])
    member = rng.choice(["yes", "no"], rows)
    score = (x1 - 5) / 2 + (color == "red") - (color == "blue") + rng.normal(0, 0.8, rows)
    return pd.DataFrame(
        {
            "x1": x1,
            "x2": x2,
            "color": color,
            "member": member,
            "label": np.where(score > 0.6, "high", np.where(score < -0.6, "low", "mid")),
            "flag": np.where(score + 0.5 * x2 > 0.9, "yes", "no"),
            "amount": 3 * x1 - 2 * x2 + 4 * (member == "yes") + rng.normal(0, 2, rows),
        }
    )


@pytest.fixture(scope="module")
def fitted() -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    frame = _table()
    train, test = frame.iloc[:TRAIN_ROWS], frame.iloc[TRAIN_ROWS:]
    preprocessor = Preprocessor.fit(
        [NumberInput(name="x1"), NumberInput(name="x2"), CategoryInput(name="color"),
         BinaryInput(name="member")],
        [CategoryOutput(name="label"), BinaryOutput(name="flag"), NumberOutput(name="amount")],
        train, base_dir=None, origin="table",
    )  # fmt: skip
    tensors = [preprocessor.transform(f, base_dir=None, origin="table") for f in (train, test)]
    baselines = fit_baselines(
        preprocessor.input_specs,
        preprocessor.output_specs,
        *tensors,
        budget=Budget(600.0),
    )
    return train, test, baselines


def _sklearn_inputs(train: pd.DataFrame, test: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The encoded inputs built independently: standardised numbers, one-hot colour, 0/1."""
    scaler = StandardScaler().fit(train[["x1", "x2"]])
    onehot = OneHotEncoder(handle_unknown="ignore").fit(train[["color"]])

    def encode(frame: pd.DataFrame) -> np.ndarray:
        return np.hstack(
            [
                scaler.transform(frame[["x1", "x2"]]),
                onehot.transform(frame[["color"]]).toarray(),
                (frame[["member"]] == "yes").to_numpy(float),
            ]
        )

    return encode(train), encode(test)


def test_linear_baselines_equal_scikit_learn_on_the_same_split(fitted) -> None:
    train, test, baselines = fitted
    x_train, x_test = _sklearn_inputs(train, test)

    label = LogisticRegression(max_iter=200).fit(x_train, train["label"])
    predicted = label.predict(x_test)
    linear = baselines["label"]["linear"]
    assert linear["accuracy"] == pytest.approx(
        sk.accuracy_score(test["label"], predicted), abs=1e-6
    )
    assert linear["macro_f1"] == pytest.approx(
        sk.f1_score(test["label"], predicted, average="macro"), abs=1e-6
    )
    assert 0.5 < linear["accuracy"] < 1.0  # a real fit, not a trivial one

    flag = LogisticRegression(max_iter=200).fit(x_train, train["flag"])
    positive = flag.predict_proba(x_test)[:, list(flag.classes_).index("yes")]
    truth = (test["flag"] == "yes").to_numpy()
    linear = baselines["flag"]["linear"]
    assert linear["accuracy"] == pytest.approx(sk.accuracy_score(truth, positive > 0.5), abs=1e-6)
    assert linear["f1"] == pytest.approx(sk.f1_score(truth, positive > 0.5), abs=1e-6)
    assert linear["auc"] == pytest.approx(sk.roc_auc_score(truth, positive), abs=1e-5)

    # ridge on the raw target: its predictions equal those fitted on the standardised one
    amount = Ridge(alpha=1.0).fit(x_train, train["amount"]).predict(x_test)
    linear = baselines["amount"]["linear"]
    assert linear["mse"] == pytest.approx(sk.mean_squared_error(test["amount"], amount), rel=1e-4)
    assert linear["mae"] == pytest.approx(sk.mean_absolute_error(test["amount"], amount), rel=1e-4)
    assert linear["r2"] == pytest.approx(sk.r2_score(test["amount"], amount), abs=1e-4)
    fit = baselines["amount"]["linear_fit"]
    assert fit["model"] == "ridge regression" and fit["train_rows"] == TRAIN_ROWS
    assert fit["features"] == 2 + 5 + 1  # a colour's one-hot keeps the 'unknown' index 0
    assert fit["seconds"] >= 0 and "note" not in baselines["amount"]


def test_majority_baselines_predict_the_most_common_train_answer(fitted) -> None:
    train, test, baselines = fitted
    common = train["label"].mode()[0]
    majority = baselines["label"]["majority"]
    assert majority["accuracy"] == pytest.approx((test["label"] == common).mean(), abs=1e-6)
    assert majority["macro_f1"] == pytest.approx(
        sk.f1_score(test["label"], [common] * len(test), average="macro", zero_division=0),
        abs=1e-6,
    )
    assert (train["flag"] == "no").mean() > 0.5  # so the majority never says yes
    majority = baselines["flag"]["majority"]
    assert majority["accuracy"] == pytest.approx((test["flag"] == "no").mean(), abs=1e-6)
    assert majority["f1"] == 0.0 and majority["auc"] == 0.5
    mean = np.full(len(test), train["amount"].mean())
    majority = baselines["amount"]["majority"]
    assert majority["mse"] == pytest.approx(sk.mean_squared_error(test["amount"], mean), rel=1e-4)
    assert majority["r2"] == pytest.approx(sk.r2_score(test["amount"], mean), abs=1e-4)


def test_baseline_columns_prefix_metrics_as_the_network_does(fitted) -> None:
    columns = baseline_columns({"baselines": fitted[2]})
    assert set(columns) == {"majority", "linear"}
    assert "label/accuracy" in columns["linear"] and "amount/r2" in columns["majority"]
    single = baseline_columns({"baselines": {"y": fitted[2]["flag"]}})
    assert single["linear"]["auc"] == fitted[2]["flag"]["linear"]["auc"]
    assert baseline_columns({"test": {"accuracy": 0.5}}) == {}


def test_a_spent_budget_skips_the_linear_model_with_a_note() -> None:
    frame = _table(rows=60)
    preprocessor = Preprocessor.fit(
        [NumberInput(name="x1")], [BinaryOutput(name="flag")], frame, base_dir=None, origin="t"
    )
    table = preprocessor.transform(frame, base_dir=None, origin="t")
    spent = Budget(0.0)
    entry = fit_baselines(
        preprocessor.input_specs, preprocessor.output_specs, table, table, budget=spent
    )["flag"]
    assert "linear" not in entry and "majority" in entry
    assert "skipped" in entry["note"] and "budget" in entry["note"]


def test_rows_grow_only_as_far_as_the_budget_affords() -> None:
    # 1,000 rows took 1 s; 6 s left afford 4,000 rows (a safety factor of 1.5)
    assert affordable_rows(1000, 1.0, 6.0, 100_000) == 4000
    assert affordable_rows(1000, 1.0, 6.0, 3000) == 3000  # all rows
    assert affordable_rows(1000, 1.0, 2.0, 100_000) is None  # not even twice as many
    assert affordable_rows(1000, 1.0, 1.0, 1200) is None  # 1,200 would not fit either
    assert affordable_rows(1000, 1.0, 100.0, 1000) is None  # every row used already


def test_text_features_are_scikit_learn_tfidf_of_the_tokens() -> None:
    texts = pd.Series(["the cat sat", "the dog ran far", "a cat and a dog", "far far away"])
    encoder = Preprocessor.fit(
        [TextInput(name="t", max_length=8)], [BinaryOutput(name="y")],
        pd.DataFrame({"t": texts, "y": [0, 1, 0, 1]}), base_dir=None, origin="t",
    )  # fmt: skip
    table = encoder.transform(
        pd.DataFrame({"t": texts, "y": [0, 1, 0, 1]}), base_dir=None, origin="t"
    )
    rows = np.arange(len(texts))
    ours = LinearFeatures(encoder.input_specs).fit(table, rows).transform(table, rows).toarray()
    theirs = TfidfVectorizer(token_pattern=r"\w+").fit_transform(texts).toarray()
    for mine, reference in zip(ours, theirs, strict=True):  # the same values, other columns
        assert np.sort(mine[mine > 0]) == pytest.approx(np.sort(reference[reference > 0]))


def test_large_images_are_pooled_to_at_most_the_feature_cap() -> None:
    assert pooled_size((1, 64, 64)) == (64, 64)  # 4,096 values: kept
    height, width = pooled_size((3, 224, 224))
    assert 3 * height * width <= MAX_IMAGE_FEATURES and height == width == 32
    image = torch.arange(128 * 128, dtype=torch.float32).reshape(1, 1, 128, 128) % 251
    spec = InputSpec(name="im", type="image", shape=(1, 128, 128), mean=(0.0,), std=(1.0,))
    table = TensorTable({"im": image.to(torch.uint8)}, {}, np.arange(1))
    matrix = LinearFeatures([spec]).transform(table, np.arange(1))
    expected = image.reshape(64, 2, 64, 2).mean(dim=(1, 3)).flatten() / 255  # 2x2 averages
    assert matrix.shape == (1, 4096)
    assert matrix[0] == pytest.approx(expected.double().numpy(), abs=1e-6)
