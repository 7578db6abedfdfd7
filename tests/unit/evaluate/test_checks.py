"""The loud warnings: a single predicted class, no better than majority, below the linear model."""

from __future__ import annotations

import numpy as np
import torch

from megalith.data.specs import OutputSpec
from megalith.evaluate.checks import MARGIN, predicted_classes, result_warnings, warning_lines

BINARY = OutputSpec(name="y", type="binary", num_classes=2)
PRICE = OutputSpec(name="price", type="number")
CAUSES = "Likely causes: too few steps."
ROWS = 100_000
"""Test rows: so many that the margin is MARGIN itself."""


def _baselines(**linear: float) -> dict:
    return {
        "y": {
            "majority": {"accuracy": 0.7, "f1": 0.0, "auc": 0.5},
            "linear": {"accuracy": 0.9, "f1": 0.8, "auc": linear.get("auc", 0.95)},
            "linear_fit": {"model": "logistic regression"},
        }
    }


def _warn(test: dict, predicted: np.ndarray, baselines: dict | None) -> list[dict[str, str]]:
    truth = np.array([0] * 7 + [1] * 3)
    return result_warnings(
        [BINARY], {"y": predicted}, {"y": truth}, test, baselines, {"y": ["no", "yes"]}, CAUSES,
        ROWS,
    )  # fmt: skip


def test_a_classifier_that_predicts_one_class_is_named_with_that_class() -> None:
    found = _warn({"accuracy": 0.7, "f1": 0.0, "auc": 0.5}, np.zeros(10, int), _baselines())
    assert [w["kind"] for w in found] == ["single_class", "below_linear"]
    assert "predicts 'no' for every one of the 10 test rows" in found[0]["message"]
    assert "70%" in found[0]["message"] and found[0]["causes"] == CAUSES
    alone = _warn({"accuracy": 0.7, "f1": 0.0, "auc": 0.5}, np.zeros(10, int), None)
    assert [w["kind"] for w in alone] == ["single_class"]  # found without any baseline


def test_no_better_than_majority_needs_both_accuracy_and_f1_at_or_below_it() -> None:
    mixed = np.array([0] * 9 + [1])
    found = _warn({"accuracy": 0.7, "f1": 0.0, "auc": 0.96}, mixed, _baselines())
    assert [w["kind"] for w in found] == ["majority"]
    assert "accuracy 0.700, the majority's 0.700" in found[0]["message"]
    assert _warn({"accuracy": 0.6, "f1": 0.4, "auc": 0.96}, mixed, _baselines()) == []


def test_below_the_linear_baseline_only_beyond_the_margin() -> None:
    mixed = np.array([0] * 8 + [1] * 2)
    good = {"accuracy": 0.9, "f1": 0.8}
    below = _warn({**good, "auc": 0.95 - 2 * MARGIN}, mixed, _baselines())
    assert [w["kind"] for w in below] == ["below_linear"]
    assert "BELOW the linear baseline: test auc 0.930" in below[0]["message"]
    assert "logistic regression" in below[0]["message"] and "0.950" in below[0]["message"]
    assert _warn({**good, "auc": 0.95 - MARGIN / 2}, mixed, _baselines()) == []
    assert _warn({**good, "auc": float("nan")}, mixed, _baselines()) == []
    few = result_warnings(
        [BINARY], {}, {}, {**good, "auc": 0.80}, _baselines(), {}, CAUSES, test_rows=25
    )
    assert few == []  # 0.15 below, within the noise of 25 rows (1 / sqrt(25) = 0.2)
    assert result_warnings([BINARY], {}, {}, {**good, "auc": 0.7}, _baselines(), {}, CAUSES, 25)


def test_regression_against_the_mean_and_ridge_with_prefixed_metrics() -> None:
    baselines = {
        "y": {"majority": {"accuracy": 0.7, "f1": 0.0, "auc": 0.5}},
        "price": {
            "majority": {"mse": 4.0, "mae": 1.6, "r2": -0.01},
            "linear": {"mse": 1.0, "mae": 0.8, "r2": 0.75},
            "linear_fit": {"model": "ridge regression"},
        },
    }
    test = {"y/accuracy": 0.9, "y/f1": 0.8, "y/auc": 0.9, "price/r2": -0.2, "price/mse": 5.0}
    found = result_warnings(
        [BINARY, PRICE],
        {"y": np.array([0, 1, 1])},
        {"y": np.array([0, 1, 1])},
        test,
        baselines,
        {},
        CAUSES,
        ROWS,
    )
    assert [(w["output"], w["kind"]) for w in found] == [
        ("price", "majority"),
        ("price", "below_linear"),
    ]
    assert found[0]["message"].startswith("price: the network does no better than always")
    assert "ridge regression" in found[1]["message"]


def test_warning_lines_give_each_cause_once_after_its_last_warning() -> None:
    warnings = [
        {"message": "a: one", "causes": "C1"},
        {"message": "a: two", "causes": "C1"},
        {"message": "b: three", "causes": "C2"},
    ]
    assert warning_lines(warnings) == ["a: one", "a: two", "C1", "b: three", "C2"]
    assert warning_lines([{"message": "old", "causes": ""}]) == ["old"]


def test_predicted_classes_use_the_threshold_and_the_argmax() -> None:
    logits = torch.tensor([-1.0, 0.1, 2.0])  # probabilities 0.27, 0.52, 0.88
    assert predicted_classes("binary", logits, 0.5).tolist() == [0, 1, 1]
    assert predicted_classes("binary", logits, 0.6).tolist() == [0, 0, 1]
    scores = torch.tensor([[0.1, 2.0, 0.3], [3.0, 0.0, 0.0]])
    assert predicted_classes("category", scores, 0.5).tolist() == [1, 0]
