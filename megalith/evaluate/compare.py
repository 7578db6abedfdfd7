"""Runs side by side: their key settings and test metrics as a table, learning curves overlaid.

`megalith compare RUN1 RUN2 ...` prints the table and writes compare.html (self-contained, like
report.html) from the run directories alone.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table as RichTable

from megalith.evaluate import plots
from megalith.evaluate.html import Plot, format_number, render_page, write_atomically
from megalith.evaluate.metrics import higher_is_better
from megalith.evaluate.report import MetricsHistory, read_metrics_log
from megalith.runs import RunDir

COUNTS = {"users"}
"""eval.json entries that count what was scored (a recommender's users): no best is marked."""


@dataclass(frozen=True)
class RunSummary:
    """What a comparison shows of one run."""

    name: str
    path: Path
    settings: dict[str, Any]
    """arch, epochs, lr, batch size, parameters."""
    test: dict[str, float]
    history: MetricsHistory


@dataclass(frozen=True)
class Comparison:
    """Rows of [label, value per run]; `best[i]` is the index of the best run in row i (or None)."""

    runs: list[str]
    rows: list[list[str]]
    best: list[int | None]


def summarize_run(path: Path) -> RunSummary:
    """Read one run directory's config, eval.json and metrics.jsonl.

    Raises:
        RunError: the directory is not a complete run.
    """
    from megalith.config import load_config
    from megalith.loading import load

    run = load(path)  # checks the directory, and counts parameters for runs that predate it
    config, _ = load_config(RunDir(path).config)
    scores = run.metrics
    training = scores.get("training", {})
    parameters = training.get("parameters") or sum(p.numel() for p in run.model.parameters())
    settings = {
        "arch": config.model.arch,
        "epochs": training.get("epochs", config.train.epochs),
        "lr": config.train.optimizer.lr,
        "batch size": config.train.batch_size,
        "parameters": parameters,
    }
    if config.recommend is not None:
        settings |= _recommender_settings(path, config.recommend.split, config.recommend.loss)
    history = read_metrics_log(RunDir(path).metrics)
    return RunSummary(path.name, path, settings, scores.get("test", {}), history)


def _recommender_settings(path: Path, split: str, loss: str) -> dict[str, Any]:
    """A recommender's split and loss, and a fingerprint of its saved sampled negatives: runs
    with the same fingerprint were scored on the same held-out items and candidates."""
    import hashlib

    from megalith.recommend.store import NEGATIVES_FILE

    try:
        digest = hashlib.sha256((path / NEGATIVES_FILE).read_bytes()).hexdigest()[:12]
    except OSError:
        digest = "missing"
    return {"split": split, "loss": loss, "candidates": digest}


def compare_runs(summaries: Sequence[RunSummary]) -> Comparison:
    """Settings first, then every test metric any run has; the best value per metric marked."""
    rows: list[list[str]] = []
    best: list[int | None] = []
    for key in summaries[0].settings:
        rows.append([key, *(format_number(s.settings.get(key)) for s in summaries)])
        best.append(None)
    metrics = dict.fromkeys(name for s in summaries for name in s.test)
    for name in metrics:
        values = [s.test.get(name, math.nan) for s in summaries]
        rows.append([f"test {name}", *(format_number(v) for v in values)])
        best.append(None if name in COUNTS else _best(values, higher_is_better(name)))
    return Comparison([s.name for s in summaries], rows, best)


def comparison_table(comparison: Comparison) -> RichTable:
    """The comparison for the terminal; the best value of each metric in bold."""
    table = RichTable(title="runs compared")
    table.add_column("")
    for name in comparison.runs:
        table.add_column(name, justify="right")
    for row, best in zip(comparison.rows, comparison.best, strict=True):
        cells = [f"[bold green]{v}[/]" if i == best else v for i, v in enumerate(row[1:])]
        table.add_row(row[0], *cells)
    return table


def overlaid_curves(summaries: Sequence[RunSummary]) -> list[Plot]:
    """One plot per logged per-epoch metric with a line per run, then train loss per step."""
    keys = dict.fromkeys(key for s in summaries for key in s.history.curve_keys())
    figures = []
    for key in keys:
        lines = {s.name: s.history.series(key) for s in summaries if s.history.series(key)[0]}
        figure = plots.line_plot(lines, title=f"{key} per epoch", xlabel="epoch", ylabel=key)
        figures.append(Plot(key.replace("/", "-"), key, plots.figure_png(figure)))
    by_step = {
        s.name: ([int(r["step"]) for r in steps], [float(r["train/loss"]) for r in steps])
        for s in summaries
        if len(steps := [r for r in s.history.steps if r.get("train/loss") is not None]) >= 2
    }
    if by_step:
        figure = plots.line_plot(
            by_step, title="train/loss per step", xlabel="step", ylabel="train/loss"
        )
        figures.append(Plot("train-loss-by-step", "train/loss per step", plots.figure_png(figure)))
    return figures


def write_comparison(summaries: Sequence[RunSummary], output: Path) -> Path:
    """Write compare.html (or `output`) with the table and the overlaid learning curves."""
    comparison = compare_runs(summaries)
    page = render_page(
        "compare.html.j2",
        title=f"{len(summaries)} runs compared",
        generated=datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        runs=[(s.name, str(s.path.resolve())) for s in summaries],
        comparison=comparison,
        curves=overlaid_curves(summaries),
    )
    write_atomically(output, page)
    return output


def _best(values: Sequence[float], higher: bool) -> int | None:
    finite = [(v, i) for i, v in enumerate(values) if math.isfinite(v)]
    if len(finite) < 2:
        return None
    return (max(finite) if higher else min(finite))[1]
