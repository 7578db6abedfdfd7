"""The numbers behind the report's plots, from plain arrays: what is drawn is computed (and tested)
here, and megalith.evaluate.plots only draws it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def confusion_counts(truth: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """(K, K) int64 counts; row = true class, column = predicted class."""
    truth, predicted = np.asarray(truth, dtype=np.int64), np.asarray(predicted, dtype=np.int64)
    flat = np.bincount(truth * num_classes + predicted, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


@dataclass(frozen=True)
class ClassScores:
    """Per-class precision, recall, F1 and support (true rows) from a confusion matrix."""

    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray


def per_class_scores(confusion: np.ndarray) -> ClassScores:
    """Precision / recall / F1 per class; a class never predicted (or absent) scores 0, not NaN."""
    confusion = np.asarray(confusion, dtype=np.float64)
    hits = np.diag(confusion)
    predicted, support = confusion.sum(axis=0), confusion.sum(axis=1)
    precision = np.divide(hits, predicted, out=np.zeros_like(hits), where=predicted > 0)
    recall = np.divide(hits, support, out=np.zeros_like(hits), where=support > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros_like(hits), where=both > 0)
    return ClassScores(precision, recall, f1, support.astype(np.int64))


@dataclass(frozen=True)
class Curve:
    """A curve to draw: x, y and a one-number summary (AUC or average precision)."""

    x: np.ndarray
    y: np.ndarray
    area: float


def _ranked_counts(is_positive: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """True and false positives when the threshold sits at each distinct score, highest first."""
    order = np.argsort(-np.asarray(score, dtype=np.float64), kind="stable")
    score, hit = np.asarray(score, dtype=np.float64)[order], np.asarray(is_positive)[order] > 0
    last_of_each_score = np.r_[np.nonzero(np.diff(score))[0], len(score) - 1]
    true_pos = np.cumsum(hit)[last_of_each_score].astype(np.float64)
    false_pos = (last_of_each_score + 1) - true_pos
    return true_pos, false_pos


def roc_curve(is_positive: np.ndarray, score: np.ndarray) -> Curve:
    """False-positive rate (x) against true-positive rate (y), from (0, 0); area = ROC AUC.

    NaN area when only one of the two outcomes occurs (the curve is undefined).
    """
    true_pos, false_pos = _ranked_counts(is_positive, score)
    positives = true_pos[-1] if len(true_pos) else 0.0
    negatives = false_pos[-1] if len(false_pos) else 0.0
    if positives == 0 or negatives == 0:
        return Curve(np.array([0.0, 1.0]), np.array([0.0, 1.0]), float("nan"))
    fpr = np.r_[0.0, false_pos / negatives]
    tpr = np.r_[0.0, true_pos / positives]
    area = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))  # trapezoids
    return Curve(fpr, tpr, area)


def precision_recall_curve(is_positive: np.ndarray, score: np.ndarray) -> Curve:
    """Recall (x) against precision (y), from recall 0; area = average precision (step-wise)."""
    true_pos, false_pos = _ranked_counts(is_positive, score)
    positives = true_pos[-1] if len(true_pos) else 0.0
    if positives == 0:
        return Curve(np.array([0.0, 1.0]), np.array([1.0, 0.0]), float("nan"))
    precision = true_pos / (true_pos + false_pos)
    recall = true_pos / positives
    average_precision = float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
    return Curve(np.r_[0.0, recall], np.r_[1.0, precision], average_precision)


@dataclass(frozen=True)
class Calibration:
    """A reliability diagram: per probability bin, mean predicted probability and observed rate."""

    edges: np.ndarray
    """bins + 1 edges from 0 to 1."""
    confidence: np.ndarray
    """Mean predicted probability in each bin (NaN for an empty bin)."""
    observed: np.ndarray
    """Fraction of rows in each bin whose outcome happened (NaN for an empty bin)."""
    counts: np.ndarray
    expected_error: float
    """Expected calibration error: |observed - confidence| averaged over rows."""


def calibration_bins(probability: np.ndarray, outcome: np.ndarray, bins: int = 10) -> Calibration:
    """Bin predicted probabilities into equal-width bins and compare with the observed outcomes.

    For a binary target: probability of the positive class vs "is positive"; for several classes:
    the predicted class's probability (confidence) vs "the prediction is right".
    """
    probability = np.clip(np.asarray(probability, dtype=np.float64), 0.0, 1.0)
    outcome = np.asarray(outcome, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.minimum(np.digitize(probability, edges[1:-1], right=True), bins - 1)
    counts = np.bincount(which, minlength=bins)
    sums = np.bincount(which, weights=probability, minlength=bins)
    hits = np.bincount(which, weights=outcome, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence, observed = sums / counts, hits / counts
    filled = counts > 0
    gaps = np.abs(observed[filled] - confidence[filled]) * counts[filled]
    error = float(gaps.sum() / counts.sum()) if counts.sum() else float("nan")
    return Calibration(edges, confidence, observed, counts, error)


def most_confident_mistakes(
    truth: np.ndarray, predicted: np.ndarray, confidence: np.ndarray, limit: int
) -> np.ndarray:
    """Positions of wrong predictions, the most confident first (at most `limit`)."""
    wrong = np.nonzero(np.asarray(truth) != np.asarray(predicted))[0]
    order = np.argsort(-np.asarray(confidence)[wrong], kind="stable")
    return wrong[order][:limit]


def histogram(values: np.ndarray, bins: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Counts and edges of finite values (the residuals plot)."""
    values = np.asarray(values, dtype=np.float64)
    counts, edges = np.histogram(values[np.isfinite(values)], bins=bins)
    return counts, edges
