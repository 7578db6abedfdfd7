"""One function per plot: plain arrays in, a matplotlib Figure out; `figure_png` renders it.

Figures are drawn with the Agg canvas directly (no pyplot): no global state, no GUI backend,
nothing kept alive after a figure is rendered. The numbers come from megalith.evaluate.curves.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from megalith.evaluate.curves import Calibration, Curve

DPI = 90
"""Modest on purpose: a report on a small run renders in a second or two, and stays small."""
SIZE = (5.2, 3.6)
"""Inches; at DPI this is 468 x 324 pixels."""
COLORS = ("#2563eb", "#ea580c", "#16a34a", "#dc2626", "#9333ea", "#0891b2", "#ca8a04", "#db2777")
"""A palette that stays apart on screen and in print; cycled when there are more lines."""


def figure_png(figure: Figure, dpi: int = DPI) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def _figure(size: tuple[float, float] = SIZE) -> tuple[Figure, Axes]:
    figure = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(figure)  # attaches the Agg canvas that savefig renders with
    return figure, figure.add_subplot()


def _style(axes: Axes, title: str, xlabel: str, ylabel: str, grid: bool = True) -> None:
    axes.set_title(title, fontsize=11, loc="left")
    axes.set_xlabel(xlabel, fontsize=9)
    axes.set_ylabel(ylabel, fontsize=9)
    axes.tick_params(labelsize=8)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    if grid:
        axes.grid(True, color="#e5e7eb", linewidth=0.8)
        axes.set_axisbelow(True)


def line_plot(
    lines: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
) -> Figure:
    """One line per entry (label -> (x, y)): learning curves, or runs overlaid in a comparison."""
    figure, axes = _figure()
    for i, (label, (x, y)) in enumerate(lines.items()):
        values = np.asarray(y, dtype=np.float64)
        marker = "o" if len(values) <= 30 else None
        dashed = "--" if label.startswith("train/") else "-"  # train dashed, val solid
        axes.plot(
            x, values, dashed, marker=marker, markersize=3, linewidth=1.6,
            color=COLORS[i % len(COLORS)], label=label,
        )  # fmt: skip
    _style(axes, title, xlabel, ylabel)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs and steps
    if len(lines) > 1:
        axes.legend(fontsize=8, frameon=False)
    return figure


def confusion_plot(counts: np.ndarray, class_names: Sequence[str]) -> Figure:
    """Counts in each cell; the colour is the share of the true class (rows sum to 1)."""
    k = len(class_names)
    side = min(max(3.6, 0.42 * k + 1.6), 9.0)
    figure, axes = _figure((side + 0.6, side))
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    image = axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    if k <= 30:  # beyond that the numbers no longer fit in their cells
        for (row, column), count in np.ndenumerate(counts):
            colour = "white" if shares[row, column] > 0.6 else "#111827"
            axes.text(column, row, str(count), ha="center", va="center", fontsize=7, color=colour)
    ticks = np.arange(k)
    names = [_short(name) for name in class_names]
    axes.set_xticks(ticks, names, rotation=90 if k > 6 else 0)
    axes.set_yticks(ticks, names)
    _style(axes, "Confusion matrix (test)", "predicted", "true", grid=False)
    figure.colorbar(image, ax=axes, shrink=0.8, label="share of the true class")
    return figure


def roc_plot(curves: Mapping[str, Curve]) -> Figure:
    """ROC curves (one per class, one-vs-rest, or one for a binary target) and the chance line."""
    figure, axes = _figure()
    axes.plot([0, 1], [0, 1], ":", color="#9ca3af", linewidth=1)
    for i, (label, curve) in enumerate(curves.items()):
        axes.plot(
            curve.x, curve.y, linewidth=1.5, color=COLORS[i % len(COLORS)],
            label=f"{_short(label)} (AUC {curve.area:.3f})",
        )  # fmt: skip
    _style(axes, "ROC curve (test)", "false positive rate", "true positive rate")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.02)
    axes.legend(fontsize=7, frameon=False, loc="lower right")
    return figure


def precision_recall_plot(curves: Mapping[str, Curve]) -> Figure:
    """Precision against recall; the legend gives each curve's average precision."""
    figure, axes = _figure()
    for i, (label, curve) in enumerate(curves.items()):
        axes.step(
            curve.x, curve.y, where="post", linewidth=1.5, color=COLORS[i % len(COLORS)],
            label=f"{_short(label)} (AP {curve.area:.3f})",
        )  # fmt: skip
    _style(axes, "Precision-recall curve (test)", "recall", "precision")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.02)
    axes.legend(fontsize=7, frameon=False, loc="lower left")
    return figure


def calibration_plot(calibration: Calibration, xlabel: str, ylabel: str) -> Figure:
    """Reliability diagram: observed rate per probability bin against the diagonal of perfection."""
    figure, axes = _figure()
    centres = (calibration.edges[:-1] + calibration.edges[1:]) / 2
    width = np.diff(calibration.edges)
    share = calibration.counts / max(int(calibration.counts.sum()), 1)
    axes.bar(centres, share, width=width * 0.9, color="#e5e7eb", label="share of rows")
    axes.plot([0, 1], [0, 1], ":", color="#9ca3af", linewidth=1, label="perfectly calibrated")
    filled = calibration.counts > 0
    axes.plot(
        calibration.confidence[filled], calibration.observed[filled], "o-", color=COLORS[0],
        markersize=4, linewidth=1.5, label=f"model (ECE {calibration.expected_error:.3f})",
    )  # fmt: skip
    _style(axes, "Calibration (test)", xlabel, ylabel)
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.02)
    axes.legend(fontsize=7, frameon=False, loc="upper left")
    return figure


def predicted_vs_true_plot(truth: np.ndarray, predicted: np.ndarray, name: str) -> Figure:
    """Each test row as a point; on the diagonal the prediction is exact."""
    figure, axes = _figure()
    low = float(min(np.min(truth), np.min(predicted))) if len(truth) else 0.0
    high = float(max(np.max(truth), np.max(predicted))) if len(truth) else 1.0
    axes.plot([low, high], [low, high], ":", color="#9ca3af", linewidth=1)
    axes.scatter(truth, predicted, s=10, alpha=0.6, color=COLORS[0], linewidths=0)
    _style(axes, f"Predicted vs true {name} (test)", f"true {name}", f"predicted {name}")
    return figure


def residuals_plot(counts: np.ndarray, edges: np.ndarray, name: str) -> Figure:
    """Histogram of residuals (predicted - true); centred on zero when the model is unbiased."""
    figure, axes = _figure()
    axes.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color=COLORS[0], alpha=0.8)
    axes.axvline(0.0, color="#111827", linewidth=1, linestyle=":")
    _style(axes, f"Residuals of {name} (test)", "predicted - true", "rows")
    return figure


def _short(label: str, limit: int = 18) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"
