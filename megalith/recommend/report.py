"""report.html of a recommender run: the model beside most-popular and random, by full ranking
and by the sampled protocol, with the data and training facts (self-contained, no scripts)."""

from __future__ import annotations

from html import escape
from typing import Any

from megalith.config import Config
from megalith.runs import RunDir

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;max-width:60em}"
    "table{border-collapse:collapse;margin:1em 0}"
    "td,th{padding:.3em .8em;border-bottom:1px solid #ddd}"
    "td{text-align:right;font-variant-numeric:tabular-nums}th{text-align:left}"
    ".best{font-weight:bold}.note{color:#555}"
)


def _table(scores: dict[str, Any], metrics: list[str]) -> str:
    columns = {"model": scores["test"], **scores["recommender_baselines"]}
    head = "".join(f"<th>{escape(name)}</th>" for name in columns)
    rows = []
    for metric in metrics:
        values = {name: column.get(metric) for name, column in columns.items()}
        best = max((v for v in values.values() if v is not None), default=None)
        cells = "".join(
            f"<td class='{'best' if v == best else ''}'>{'-' if v is None else f'{v:.4f}'}</td>"
            for v in values.values()
        )
        rows.append(f"<tr><th>{escape(metric)}</th>{cells}</tr>")
    return f"<table><tr><th>metric</th>{head}</tr>{''.join(rows)}</table>"


def write_recommender_report(run_dir: RunDir, cfg: Config, scores: dict[str, Any]) -> None:
    """RUN/report.html from eval.json's scores.

    Raises:
        RunError: the file cannot be written.
    """
    assert cfg.recommend is not None
    test = scores["test"]
    full = [m for m in test if not m.startswith("sampled_") and m not in ("users", "loss")]
    sampled = [m for m in test if m.startswith("sampled_")]
    training = scores.get("training", {})
    facts = (
        f"model <b>{escape(cfg.model.arch)}</b>, loss {escape(cfg.recommend.training_loss)}, split "
        f"{escape(cfg.recommend.split)}, {int(test.get('users', 0)):,} users evaluated; "
        f"{training.get('epochs', '?')} epochs in {training.get('seconds', 0):.1f} s, "
        f"{training.get('parameters', 0):,} parameters"
    )
    body = (
        f"<h1>{escape(cfg.name)}</h1><p>{facts}</p>"
        "<h2>Full ranking</h2><p class='note'>Every item the user has not interacted with in "
        "train (and val) is ranked.</p>" + _table(scores, full) + "<h2>Sampled protocol</h2>"
        f"<p class='note'>Each held-out item among {cfg.recommend.eval_negatives} negatives "
        "drawn once with the run's seed (eval_negatives.safetensors); known to flatter "
        "models compared with full ranking.</p>" + _table(scores, sampled)
    )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{escape(cfg.name)}</title><style>{_STYLE}</style></head>"
        f"<body>{body}</body></html>\n"
    )
    run_dir.write_text(run_dir.path / "report.html", page)
