"""The numbers behind the plots, against hand-computed values and scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from megalith.evaluate import curves


def test_confusion_counts_from_fixed_predictions() -> None:
    truth = np.array([0, 0, 1, 1, 1, 2, 2, 2, 2])
    predicted = np.array([0, 1, 1, 1, 2, 2, 2, 0, 2])
    counts = curves.confusion_counts(truth, predicted, 3)
    assert counts.tolist() == [[1, 1, 0], [0, 2, 1], [1, 0, 3]]
    assert counts.sum() == len(truth)


def test_per_class_scores_by_hand_and_no_nan_for_a_class_never_predicted() -> None:
    counts = np.array([[1, 1, 0], [0, 2, 1], [1, 0, 3]])
    scores = curves.per_class_scores(counts)
    np.testing.assert_allclose(scores.precision, [1 / 2, 2 / 3, 3 / 4])
    np.testing.assert_allclose(scores.recall, [1 / 2, 2 / 3, 3 / 4])
    np.testing.assert_allclose(scores.f1, [1 / 2, 2 / 3, 3 / 4])
    assert scores.support.tolist() == [2, 3, 4]
    never = curves.per_class_scores(np.array([[2, 0], [1, 0]]))
    assert never.precision.tolist() == [2 / 3, 0.0] and never.f1[1] == 0.0


def test_roc_curve_matches_scikit_learn_with_ties() -> None:
    rng = np.random.default_rng(0)
    hits = rng.random(200) < 0.4
    scores = np.round(hits * 0.3 + rng.random(200), 1)  # rounded: many tied scores
    curve = curves.roc_curve(hits, scores)
    assert curve.area == pytest.approx(roc_auc_score(hits, scores))
    assert (curve.x[0], curve.y[0], curve.x[-1], curve.y[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert np.all(np.diff(curve.x) >= 0) and np.all(np.diff(curve.y) >= 0)


def test_roc_of_a_perfect_ranking_and_of_a_single_class() -> None:
    assert curves.roc_curve(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9])).area == 1.0
    assert math.isnan(curves.roc_curve(np.array([1, 1]), np.array([0.2, 0.9])).area)


def test_average_precision_matches_scikit_learn() -> None:
    rng = np.random.default_rng(1)
    hits = rng.random(300) < 0.3
    scores = hits * 0.4 + rng.random(300)
    curve = curves.precision_recall_curve(hits, scores)
    assert curve.area == pytest.approx(average_precision_score(hits, scores))
    assert curve.x[0] == 0.0 and curve.x[-1] == 1.0


def test_calibration_bins_by_hand() -> None:
    probability = np.array([0.05, 0.15, 0.15, 0.95, 0.95, 0.95, 0.95])
    outcome = np.array([0, 0, 1, 1, 1, 1, 0])
    calibration = curves.calibration_bins(probability, outcome, bins=10)
    assert calibration.counts.tolist() == [1, 2, 0, 0, 0, 0, 0, 0, 0, 4]
    assert calibration.confidence[1] == pytest.approx(0.15)
    assert calibration.observed[1] == pytest.approx(0.5)
    assert calibration.observed[9] == pytest.approx(0.75)
    assert math.isnan(calibration.observed[2])
    expected = (1 * 0.05 + 2 * 0.35 + 4 * 0.2) / 7
    assert calibration.expected_error == pytest.approx(expected)


def test_probability_one_and_zero_land_in_the_end_bins() -> None:
    calibration = curves.calibration_bins(np.array([0.0, 1.0]), np.array([0, 1]), bins=4)
    assert calibration.counts.tolist() == [1, 0, 0, 1]


def test_most_confident_mistakes_first_and_only_mistakes() -> None:
    truth = np.array([0, 1, 2, 0, 1])
    predicted = np.array([0, 2, 1, 1, 1])
    confidence = np.array([0.99, 0.6, 0.9, 0.7, 0.95])
    assert curves.most_confident_mistakes(truth, predicted, confidence, 2).tolist() == [2, 3]
    assert curves.most_confident_mistakes(truth, predicted, confidence, 10).tolist() == [2, 3, 1]


def test_histogram_ignores_non_finite_values() -> None:
    counts, edges = curves.histogram(np.array([0.0, 1.0, 1.0, np.nan, np.inf]), bins=2)
    assert counts.tolist() == [1, 2] and len(edges) == 3
