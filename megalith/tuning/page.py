"""study.html: one self-contained page (PNG figures inline, no script, no outside URL) with
Optuna's matplotlib plots: optimisation history, the epochs of every trial (where pruning
stopped them), parameter importances (fANOVA), parallel coordinates and slices."""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from html import escape
from typing import TYPE_CHECKING, Any

from megalith.evaluate.html import data_uri, format_number

if TYPE_CHECKING:
    import optuna

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:.5em 0;font-size:90%}td,th{padding:2px 8px;text-align:left}
tr:nth-child(even){background:#f4f4f4}img{max-width:100%}.note{color:#666}
.complete{color:#080}.pruned{color:#a60}.fail{color:#b00}
"""
LEGEND_MOST = 10
TRIALS_SHOWN = 300
"""Trials listed one by one in the page; study.json holds them all."""


def study_page(study: optuna.Study, summary: dict[str, Any]) -> str:
    """The page for `study` (summary: what study.json holds)."""
    best = summary["best"]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
        "img-src data:; style-src 'unsafe-inline'\">",
        f"<title>Study {escape(summary['study'])}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>Study {escape(summary['study'])}</h1>",
        f"<p id='summary'>{escape(summary['direction'])} {escape(summary['metric'])}; "
        f"{escape(summary['sampler'])} sampler, {escape(summary['pruner'])} pruner; "
        f"{sum(summary['counts'].values())} trials "
        f"({escape(', '.join(f'{n} {s}' for s, n in sorted(summary['counts'].items())))}), "
        f"{summary['epochs']} epochs; storage {escape(summary['storage'])}.</p>",
    ]
    if best is not None:
        params = ", ".join(f"{k} = {_value(v)}" for k, v in best["params"].items())
        parts.append(
            f"<p id='best'>Best: trial {best['number']}, {escape(summary['metric'])} "
            f"{format_number(best['value'])}: {escape(params)} (best.yaml).</p>"
        )
    for title, png in _figures(study):
        body = (
            f"<img alt='{escape(title)}' src='{data_uri(png)}'>"
            if png
            else "<p class='note'>needs more completed trials</p>"
        )
        parts.append(f"<h2>{escape(title)}</h2>{body}")
    parts.append(_trials_table(summary))
    parts.append("</body></html>")
    return "\n".join(parts)


def _figures(study: optuna.Study) -> list[tuple[str, bytes | None]]:
    from optuna.visualization import matplotlib as plots

    makers: list[tuple[str, Callable[..., Any]]] = [
        ("Optimisation history", plots.plot_optimization_history),
        ("Every trial's epochs (intermediate values)", plots.plot_intermediate_values),
        ("Parameter importances", plots.plot_param_importances),
        ("Parallel coordinates", plots.plot_parallel_coordinate),
        ("Slices", plots.plot_slice),
    ]
    return [(title, _png(maker, study)) for title, maker in makers]


def _png(maker: Callable[..., Any], study: optuna.Study) -> bytes | None:
    """The plot as PNG, or None when the study has too few trials for it."""
    import matplotlib.pyplot as plt
    import numpy as np

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna's 'experimental' notes on every plot
        try:
            axes = maker(study)
        except (ValueError, RuntimeError, ZeroDivisionError):
            return None
    first = np.asarray(axes).flat[0]
    figure = first.figure
    try:
        if not any(ax.has_data() for ax in figure.axes):
            return None
        for ax in figure.axes:  # one legend entry per trial says nothing past a few trials
            legend = ax.get_legend()
            if legend is not None and len(legend.get_texts()) > LEGEND_MOST:
                legend.remove()
        figure.set_size_inches(max(figure.get_size_inches()[0], 8), 4.5)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
        return buffer.getvalue()
    finally:
        plt.close(figure)


def _value(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _trials_table(summary: dict[str, Any]) -> str:
    keys = sorted({key for trial in summary["trials"] for key in trial["params"]})
    head = "".join(
        f"<th>{escape(k)}</th>"
        for k in ["trial", "state", summary["metric"], "epochs", "seconds", *keys]
    )
    rows = []
    for trial in summary["trials"][:TRIALS_SHOWN]:
        cells = [
            str(trial["number"]),
            f"<span class='{trial['state']}'>{escape(trial['state'])}</span>",
            format_number(trial["value"]) if trial["value"] is not None else "-",
            str(trial["epochs"] or 0),
            format_number(trial["seconds"], 2) if trial["seconds"] is not None else "-",
            *(escape(_value(trial["params"].get(k, ""))) for k in keys),
        ]
        title = f" title='{escape(trial['error'])}'" if trial.get("error") else ""
        rows.append(f"<tr{title}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f"<h2>Trials</h2><table id='trials'><tr>{head}</tr>{''.join(rows)}</table>"
