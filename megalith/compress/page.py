"""compression.html: the compression table as one self-contained page (no script, no URL)."""

from __future__ import annotations

from html import escape
from typing import Any

from megalith.evaluate.html import format_number

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:3px 8px;text-align:right;
border-bottom:1px solid #ddd}td:first-child,th:first-child{text-align:left}
.yes{color:#080}.no{color:#b00}.why{font-size:.9em;color:#555}
"""


def compression_page(summary: dict[str, Any]) -> str:
    """The page: what was compressed and how it was measured, the table, the verdicts."""
    watched = summary["watched"]
    timing = summary["timing"]
    machine = summary["machine"]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
        "style-src 'unsafe-inline'\">",
        f"<title>Compression: {escape(summary['run'])}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>Compression of {escape(summary['run'])}</h1>",
        f"<p>Steps: {escape(' → '.join(summary['steps']))}. The gates watch test "
        f"<b>{escape(watched['metric'])}</b> ({escape(watched['why'])}; a point is 0.01) and "
        "latency against the last accepted model. Latency: "
        f"{escape(timing['statistic'])} of {timing['runs']} runs of each ONNX bundle, "
        f"{timing['threads']} thread(s), {escape(str(machine['cpu']))}, "
        f"ONNX Runtime {escape(str(machine['onnxruntime']))}. The baseline is the original's "
        "fp32 bundle.</p>",
        _table(summary["models"], watched["metric"]),
        f"<p>Taken forward at the end: <b>{escape(summary['best'])}</b>.</p>",
        "</body></html>",
    ]
    return "\n".join(parts)


def _table(models: list[dict[str, Any]], metric: str) -> str:
    base = models[0]
    head = (
        "<tr><th>model</th><th>kind</th><th>parameters</th><th>ONNX MB</th><th>MACs</th>"
        "<th>ms @1</th><th>ms @32</th><th>speed-up @1 / @32</th>"
        f"<th>{escape(metric)}</th><th>agreement</th><th>verdict</th></tr>"
    )
    rows = [head]
    for model in models:
        latency = model["latency_ms"]
        speedup = " / ".join(
            f"{base['latency_ms'][size] / latency[size]:.2f}x" for size in ("1", "32")
        )
        verdict = model["verdict"]
        accepted = verdict.get("accepted", False)
        label = "accepted" if accepted else "rejected"
        if not accepted and verdict.get("taken_forward"):
            label += " (forced)"
        why = "".join(f"<div class='why'>{escape(r)}</div>" for r in verdict.get("reasons", []))
        kind = model["kind"] + (f" ({model['scheme']} int8)" if model.get("scheme") else "")
        agreement = model.get("agreement")
        rows.append(
            f"<tr><td>{escape(model['name'])}</td><td>{escape(kind)}</td>"
            f"<td>{model['parameters']:,}</td><td>{model['bundle_mb']:.3f}</td>"
            f"<td>{_macs(model.get('macs'))}</td>"
            f"<td>{latency['1']:.3f}</td><td>{latency['32']:.3f}</td><td>{speedup}</td>"
            f"<td>{format_number(model['metrics'].get(metric, float('nan')))}</td>"
            f"<td>{'' if agreement is None else format_number(agreement)}</td>"
            f"<td class='{'yes' if accepted else 'no'}'>{label}{why}</td></tr>"
        )
    return "<table>" + "".join(rows) + "</table>"


def _macs(macs: int | None) -> str:
    return "" if macs is None else f"{macs:,}"
