"""Per-output diagnostics on the test split: what the report shows for each classification or
regression output (plots, per-class scores, the most confidently wrong examples)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from megalith.data.tensors import TensorTable
from megalith.evaluate import curves, plots
from megalith.evaluate.html import Plot, data_uri, format_number, slug, thumbnail

MISTAKES = 8
"""Most confidently wrong test examples shown per classification output."""
ONE_VS_REST_LIMIT = 10
"""Up to this many classes get a ROC / PR curve each; above it, one micro-averaged curve."""
SNIPPET = 160
"""Characters of a text cell shown for an example."""


@dataclass
class OutputSection:
    """Everything the report shows for one output."""

    name: str
    kind: str
    """'classification' or 'regression'."""
    plots: list[Plot]
    class_scores: list[list[str]] = field(default_factory=list)
    """Rows of [class, precision, recall, F1, support], then a macro-average row."""
    mistake_columns: list[str] = field(default_factory=list)
    mistakes: list[list[dict[str, str]]] = field(default_factory=list)
    """Rows of cells, each {'text': ...} or {'image': data URI}."""


@dataclass(frozen=True)
class Classification:
    """One classification output's test predictions as arrays."""

    classes: list[str]
    probabilities: np.ndarray
    """(N, K)"""
    predicted: np.ndarray
    truth: np.ndarray


def as_classification(
    kind: str, classes: Sequence[Any], logits: torch.Tensor, target: torch.Tensor, threshold: float
) -> Classification:
    """Category logits (N, K) or a binary logit (N,) -> probabilities (N, K) and labels."""
    if kind == "binary":
        positive = torch.sigmoid(logits.double().reshape(-1)).numpy()
        probabilities = np.stack([1.0 - positive, positive], axis=1)
        predicted = (positive > threshold).astype(np.int64)
    else:
        probabilities = torch.softmax(logits.double(), dim=1).numpy()
        predicted = probabilities.argmax(axis=1)
    truth = target.long().numpy()
    return Classification([str(c) for c in classes], probabilities, predicted, truth)


def classification_section(
    name: str, result: Classification, test: TensorTable, frame: pd.DataFrame
) -> OutputSection:
    """Confusion matrix, per-class scores, ROC, PR, calibration and confident mistakes."""
    k = len(result.classes)
    counts = curves.confusion_counts(result.truth, result.predicted, k)
    rocs, prs = _one_vs_rest(result)
    section = OutputSection(
        name,
        "classification",
        [
            _plot(name, "confusion", "Confusion", plots.confusion_plot(counts, result.classes)),
            _plot(name, "roc", "ROC curve", plots.roc_plot(rocs)),
            _plot(name, "precision-recall", "Precision-recall", plots.precision_recall_plot(prs)),
            _plot(name, "calibration", "Calibration", _calibration_figure(result)),
        ],
        class_scores=_class_score_rows(counts, result.classes),
    )
    confidence = result.probabilities[np.arange(len(result.truth)), result.predicted]
    picked = curves.most_confident_mistakes(result.truth, result.predicted, confidence, MISTAKES)
    section.mistake_columns = ["row", "true", "predicted", "confidence", *test.inputs]
    section.mistakes = [
        [
            {"text": str(test.rows[i])},
            {"text": result.classes[result.truth[i]]},
            {"text": result.classes[result.predicted[i]]},
            {"text": f"{confidence[i]:.1%}"},
            *(_input_cell(test, frame, column, i) for column in test.inputs),
        ]
        for i in picked
    ]
    return section


def regression_section(name: str, predicted: np.ndarray, truth: np.ndarray) -> OutputSection:
    """Predicted against true, and the histogram of residuals; values in the target's units."""
    counts, edges = curves.histogram(predicted - truth)
    scatter = plots.predicted_vs_true_plot(truth, predicted, name)
    return OutputSection(
        name,
        "regression",
        [
            _plot(name, "predicted-vs-true", "Predicted vs true", scatter),
            _plot(name, "residuals", "Residuals", plots.residuals_plot(counts, edges, name)),
        ],
    )


def _one_vs_rest(result: Classification) -> tuple[dict[str, curves.Curve], dict[str, curves.Curve]]:
    """Binary: the positive class; up to ONE_VS_REST_LIMIT classes: each; else micro-averaged."""
    k = len(result.classes)
    if k == 2:
        wanted = [1]
    elif k <= ONE_VS_REST_LIMIT:
        wanted = list(range(k))
    else:
        hits = (result.truth[:, None] == np.arange(k)[None, :]).ravel()
        scores = result.probabilities.ravel()
        return (
            {"micro-average": curves.roc_curve(hits, scores)},
            {"micro-average": curves.precision_recall_curve(hits, scores)},
        )
    rocs, prs = {}, {}
    for c in wanted:
        hits, scores = result.truth == c, result.probabilities[:, c]
        rocs[result.classes[c]] = curves.roc_curve(hits, scores)
        prs[result.classes[c]] = curves.precision_recall_curve(hits, scores)
    return rocs, prs


def _calibration_figure(result: Classification) -> Any:
    if len(result.classes) == 2:  # the classic reliability diagram of P(positive)
        positive = result.classes[1]
        calibration = curves.calibration_bins(result.probabilities[:, 1], result.truth == 1)
        return plots.calibration_plot(
            calibration, f"predicted probability of {positive}", f"observed share of {positive}"
        )
    confidence = result.probabilities.max(axis=1)
    calibration = curves.calibration_bins(confidence, result.predicted == result.truth)
    return plots.calibration_plot(
        calibration, "confidence (probability of the predicted class)", "accuracy"
    )


def _class_score_rows(counts: np.ndarray, classes: Sequence[str]) -> list[list[str]]:
    scores = curves.per_class_scores(counts)
    rows = [
        [label, f"{p:.3f}", f"{r:.3f}", f"{f:.3f}", f"{n:,}"]
        for label, p, r, f, n in zip(
            classes, scores.precision, scores.recall, scores.f1, scores.support, strict=True
        )
    ]
    rows.append(
        [
            "macro average",
            f"{scores.precision.mean():.3f}",
            f"{scores.recall.mean():.3f}",
            f"{scores.f1.mean():.3f}",
            f"{int(scores.support.sum()):,}",
        ]
    )
    return rows


def _input_cell(test: TensorTable, frame: pd.DataFrame, column: str, i: int) -> dict[str, str]:
    """An image input as a thumbnail of what the model saw; anything else as the raw cell."""
    values = test.inputs[column]
    if values.dtype == torch.uint8 and values.dim() == 4:  # (B, C, H, W) pixels
        return {"image": data_uri(thumbnail(values[i].numpy())), "alt": f"{column} of row"}
    cell = frame.at[test.rows[i], column] if column in frame.columns else None
    if isinstance(cell, str):
        text = cell if len(cell) <= SNIPPET else cell[: SNIPPET - 1] + "…"
        return {"text": text}
    return {"text": format_number(cell)}


def _plot(output: str, name: str, title: str, figure: Any) -> Plot:
    return Plot(f"{slug(output)}-{name}", title, plots.figure_png(figure))
