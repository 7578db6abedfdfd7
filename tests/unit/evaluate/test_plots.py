"""Each plot draws what it is given: check the drawn data, and that it renders to a PNG."""

from __future__ import annotations

import io

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from megalith.evaluate import curves, plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _png_size(figure: Figure) -> tuple[int, int]:
    data = plots.figure_png(figure)
    assert data.startswith(PNG_MAGIC)
    return Image.open(io.BytesIO(data)).size


def test_line_plot_draws_one_line_per_entry_with_its_values() -> None:
    figure = plots.line_plot(
        {"train/loss": ([1, 2, 3], [2.0, 1.0, 0.5]), "val/loss": ([1, 2, 3], [2.5, 1.5, 1.2])},
        title="Loss",
        xlabel="epoch",
        ylabel="loss",
    )
    lines = figure.axes[0].get_lines()
    assert [line.get_label() for line in lines] == ["train/loss", "val/loss"]
    assert lines[1].get_ydata().tolist() == [2.5, 1.5, 1.2]
    assert lines[0].get_linestyle() == "--" and lines[1].get_linestyle() == "-"
    width, height = _png_size(figure)
    assert (width, height) == (round(plots.SIZE[0] * plots.DPI), round(plots.SIZE[1] * plots.DPI))


def test_confusion_plot_writes_every_count_in_its_cell() -> None:
    truth = np.array([0, 0, 1, 1, 1, 2])
    predicted = np.array([0, 1, 1, 1, 2, 2])
    counts = curves.confusion_counts(truth, predicted, 3)
    figure = plots.confusion_plot(counts, ["cat", "dog", "bird"])
    axes = figure.axes[0]
    cells = {
        (round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in axes.texts
    }
    assert cells[(0, 0)] == "1" and cells[(0, 1)] == "1" and cells[(1, 1)] == "2"
    assert cells[(1, 2)] == "1" and cells[(2, 2)] == "1" and cells[(2, 0)] == "0"
    assert [t.get_text() for t in axes.get_xticklabels()] == ["cat", "dog", "bird"]
    shares = axes.images[0].get_array()
    np.testing.assert_allclose(np.asarray(shares).sum(axis=1), [1.0, 1.0, 1.0])
    _png_size(figure)


def test_roc_and_pr_plots_label_each_curve_with_its_area() -> None:
    hits = np.array([0, 0, 1, 1])
    scores = np.array([0.1, 0.6, 0.4, 0.9])
    roc = curves.roc_curve(hits, scores)
    figure = plots.roc_plot({"yes": roc})
    labels = [line.get_label() for line in figure.axes[0].get_lines()]
    assert "yes (AUC 0.750)" in labels
    drawn = figure.axes[0].get_lines()[-1]
    assert drawn.get_xdata().tolist() == roc.x.tolist()
    pr = plots.precision_recall_plot({"yes": curves.precision_recall_curve(hits, scores)})
    assert any("AP" in str(line.get_label()) for line in pr.axes[0].get_lines())
    _png_size(figure)
    _png_size(pr)


def test_calibration_plot_draws_only_filled_bins() -> None:
    calibration = curves.calibration_bins(np.array([0.05, 0.95, 0.95]), np.array([0, 1, 0]))
    figure = plots.calibration_plot(calibration, "confidence", "accuracy")
    model = next(line for line in figure.axes[0].get_lines() if "ECE" in str(line.get_label()))
    assert model.get_ydata().tolist() == [0.0, 0.5]
    _png_size(figure)


def test_regression_plots() -> None:
    truth = np.array([1.0, 2.0, 3.0, 4.0])
    predicted = np.array([1.5, 2.0, 2.5, 4.5])
    scatter = plots.predicted_vs_true_plot(truth, predicted, "price")
    offsets = scatter.axes[0].collections[0].get_offsets()
    np.testing.assert_allclose(np.asarray(offsets), np.stack([truth, predicted], axis=1))
    counts, edges = curves.histogram(predicted - truth, bins=4)
    residuals = plots.residuals_plot(counts, edges, "price")
    heights = [patch.get_height() for patch in residuals.axes[0].patches]
    assert heights == counts.tolist() and sum(heights) == 4
    _png_size(scatter)
    _png_size(residuals)
