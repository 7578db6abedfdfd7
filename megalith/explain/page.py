"""explain.html: the explanations as one self-contained page (no script, no outside URL)."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

from megalith.evaluate.html import data_uri, format_number, slug

if TYPE_CHECKING:
    from megalith.explain import AttentionMap, Explanations, ImageMap

ROWS_SHOWN = 50
"""Rows shown one by one in the page; explanations.jsonl holds them all."""

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:2px 8px;text-align:left}
.bar{display:inline-block;height:.8em;background:#c33}.neg{background:#36c}
.row{border-top:1px solid #ccc;padding:.5em 0}.words span{padding:1px 2px;border-radius:3px}
.pass{color:#080}.fail{color:#b00}
"""


def explain_page(explanations: Explanations, pngs: dict[str, bytes]) -> str:
    """The page: summary, trust figures, global importance, then each row."""
    summary = explanations.summary
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
        "img-src data:; style-src 'unsafe-inline'\">",
        f"<title>Explanations: {escape(str(summary['run']))}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>Why the model predicted what it did: {escape(str(summary['output']))}</h1>",
        f"<p>{escape(summary['method_name'])}, {summary['rows']} rows of "
        f"{escape(str(summary['data']))}; explaining {escape(str(summary['target']))}, "
        f"in {escape(str(summary['units']))}. Baselines: {escape(summary['baselines'])}.</p>",
        _trust(summary["trust"]),
    ]
    if summary["global_importance"]:
        parts.append("<h2>Global importance (mean |attribution| per column)</h2>")
        parts.append(_bars(summary["global_importance"]))
    permutation = summary["trust"].get("permutation")
    if permutation:
        parts.append(
            f"<h2>Permutation importance (the fall of {escape(permutation['metric'])} when a "
            f"column is shuffled, {permutation['repeats']} times over {permutation['rows']} rows)"
            "</h2>"
        )
        parts.append(_bars(permutation["importance"]))
    by_row: dict[str, list[str]] = {}
    for image in explanations.images:
        name = image_name(image)
        if name not in pngs:  # drawn for the first rows only (output.IMAGES_DRAWN)
            key = name.removeprefix("images/").removesuffix(".png")
            tag = (
                f"<p class='undrawn'>{escape(image.column)}: its map is drawn for the first "
                f"rows only; image_maps.safetensors holds it, key '{escape(key)}'</p>"
            )
            by_row.setdefault(str(image.row), []).append(tag)
            continue
        tag = f"<img alt='{escape(name)}' src='{data_uri(pngs[name])}'>"
        by_row.setdefault(str(image.row), []).append(tag)
    drawn = [m for m in explanations.attention if attention_name(m) in pngs]
    for crossed in [m for m in drawn if m.keys is not None]:  # beside the row's token table
        name = attention_name(crossed)
        tag = f"<img alt='{escape(name)}' src='{data_uri(pngs[name])}'>"
        by_row.setdefault(str(crossed.row), []).append(tag)
    drawn = [m for m in drawn if m.keys is None]
    if drawn:
        parts.append(
            "<h2>Attention</h2><p>Per layer and head, the weight each token (down) gave each "
            "token (across), from the model's own attention; each row of a map sums to 1. "
            "attention.jsonl holds every row's maps, averaged over heads.</p>"
        )
        parts.extend(
            f"<img alt='{escape(attention_name(m))}' src='{data_uri(pngs[attention_name(m)])}'>"
            for m in drawn
        )
    if explanations.rows and "explained" in explanations.rows[0]:
        parts.append("<h2>Rows</h2>")
        for row in explanations.rows[:ROWS_SHOWN]:
            parts.append(_row(row, by_row.get(str(row["row"]), [])))
    parts.append("</body></html>")
    return "\n".join(parts)


def image_name(image: ImageMap) -> str:
    """images/ROW-COLUMN.png, safe as a file name."""
    return f"images/{slug(str(image.row))}-{slug(image.column)}.png"


def attention_name(found: AttentionMap) -> str:
    """attention/ROW-INPUT.png, safe as a file name."""
    return f"attention/{slug(str(found.row))}-{slug(found.input)}.png"


def _trust(trust: dict[str, Any]) -> str:
    items = []
    for name, figures in trust.items():
        verdict = "pass" if figures["passed"] else "fail"
        numbers = ", ".join(
            f"{key} {format_number(value)}"
            for key, value in figures.items()
            if isinstance(value, float)
        )
        items.append(
            f"<li><b>{escape(name)}</b> <span class='{verdict}'>{verdict}</span>: "
            f"{escape(figures['note'])} ({escape(numbers)})</li>"
        )
    return "<h2>Trust</h2><ul>" + "".join(items) + "</ul>" if items else ""


def _bars(values: dict[str, float]) -> str:
    largest = max((abs(v) for v in values.values()), default=0.0) or 1.0
    rows = []
    for name, value in values.items():
        width = round(150 * abs(value) / largest)
        sign = "" if value >= 0 else " neg"
        rows.append(
            f"<tr><td>{escape(name)}</td><td>{format_number(value)}</td>"
            f"<td><span class='bar{sign}' style='width:{width}px'></span></td></tr>"
        )
    return "<table>" + "".join(rows) + "</table>"


def _words(pairs: list[list[Any]]) -> str:
    largest = max((abs(v) for _, v in pairs), default=0.0) or 1.0
    spans = []
    for word, value in pairs:
        strength = min(1.0, abs(value) / largest)
        colour = "204,51,51" if value >= 0 else "51,102,204"
        spans.append(
            f"<span title='{format_number(value)}' "
            f"style='background:rgba({colour},{strength:.2f})'>{escape(str(word))}</span>"
        )
    return "<p class='words'>" + " ".join(spans) + "</p>"


def _heat_table(down: list[str], across: list[str], values: list[list[float]]) -> str:
    """A table of values, one row per token in `down` and one column per word in `across`,
    each cell coloured by its value (red raises, blue lowers) relative to the largest."""
    largest = max((abs(v) for row in values for v in row), default=0.0) or 1.0
    head = "".join(f"<th>{escape(str(word))}</th>" for word in across)
    body = []
    for token, row in zip(down, values, strict=True):
        cells = []
        for value in row:
            colour = "204,51,51" if value >= 0 else "51,102,204"
            strength = min(1.0, abs(value) / largest)
            cells.append(
                f"<td title='{format_number(value)}' style='background:"
                f"rgba({colour},{strength:.2f})'>{format_number(value)}</td>"
            )
        body.append(f"<tr><th>{escape(str(token))}</th>{''.join(cells)}</tr>")
    return f"<table class='heat'><tr><th></th>{head}</tr>{''.join(body)}</table>"


def _cut_words(row: dict[str, Any]) -> str:
    """A seq2seq row whose source was longer than the model reads: say so, as the table
    shows only the words it read."""
    cut = row.get("source_words_cut", 0)
    if not cut:
        return ""
    return (
        f"<p class='cut'>The model read the first {len(row['source_words'])} source words; the "
        f"{cut} after them, past the source's max_length, were cut off and have no value.</p>"
    )


def _cut_tokens(row: dict[str, Any]) -> str:
    """A language model's note that the document ran past the tokens it read, if it did."""
    cut = row.get("tokens_cut")
    if not cut:
        return ""
    return (
        f"<p class='cut'>The model read the first {len(row['tokens'])} tokens; the {cut} after "
        "them were cut off, so the token explained follows the last one read, not the "
        "document's end.</p>"
    )


def _row(row: dict[str, Any], images: list[str]) -> str:
    explained = row["explained"]
    if "source_attributions" in row:  # a seq2seq row: written token x source word
        return (
            f"<div class='row'><h3>Row {escape(str(row['row']))}</h3>"
            f"<p>Wrote {escape(str(explained['written']))!r}; each written token's "
            "log-probability by source word:</p>"
            f"{_cut_words(row)}"
            f"{_heat_table(row['output_tokens'], row['source_words'], row['source_attributions'])}"
            f"{''.join(images)}</div>"
        )
    if "token_attributions" in row:  # a language model's document, by word where merged
        file = f" ({escape(str(row['file']))})" if "file" in row else ""
        return (
            f"<div class='row'><h3>Row {escape(str(row['row']))}{file}</h3>"
            f"{_cut_tokens(row)}"
            f"<p>Explaining the next token, {escape(str(explained['next_token']))!r}, after:</p>"
            f"{_words(row.get('word_attributions', row['token_attributions']))}</div>"
        )
    what = explained.get("class", "the predicted value")
    parts = [
        f"<div class='row'><h3>Row {escape(str(row['row']))}</h3>",
        f"<p>Explaining {escape(str(explained['output']))} = {escape(str(what))} "
        f"(output {format_number(explained['value'])})</p>",
        _bars(row["attributions"]),
    ]
    for column, pairs in row.get("text", {}).items():
        parts.append(f"<p>{escape(column)}:</p>{_words(pairs)}")
    for column, steps in row.get("sequence", {}).items():
        shown = ", ".join(format_number(v) for v in steps[:60])
        parts.append(f"<p>{escape(column)} by step: {shown}</p>")
    parts.extend(images)
    parts.append("</div>")
    return "\n".join(parts)
