"""The explain folder (default RUN/explain):

    explanations.jsonl   one object per row: the prediction, the explained class, one value
                         per input column, a text's (word, value) pairs, a sequence's steps
    summary.json         method, global importance per column, trust figures, steps
    images/ROW-COL.png   an image input's attribution map over the image, per row
    explain.html         all of it in one self-contained page

It is written to a temporary folder beside it and moved into place, so an earlier one is only
replaced whole, and only with overwrite.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from megalith.stage_folder import check_output_folder, staged_folder

if TYPE_CHECKING:
    from megalith.explain import Explanations, ImageMap

SUMMARY_FILE = "summary.json"
ROWS_FILE = "explanations.jsonl"
PAGE_FILE = "explain.html"


def write_explanations(
    explanations: Explanations, folder: str | Path, *, overwrite: bool = False
) -> Path:
    """Write the explain folder; returns it.

    Raises:
        RunError: the folder holds other files, or an earlier explanation without `overwrite`,
            or cannot be written.
    """
    from megalith.explain.page import explain_page, image_name

    target = Path(folder)
    check_output_folder(
        target, overwrite, markers=[SUMMARY_FILE, ROWS_FILE], holds="explanations", replace="them"
    )
    with staged_folder(target) as temporary:
        pngs = {image_name(image): overlay_png(image) for image in explanations.images}
        if pngs:
            (temporary / "images").mkdir()
        for name, png in pngs.items():
            (temporary / name).write_bytes(png)
        lines = [json.dumps(row, default=str) for row in explanations.rows]
        (temporary / ROWS_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
        summary = json.dumps(explanations.summary, indent=1, default=str)
        (temporary / SUMMARY_FILE).write_text(summary, encoding="utf-8")
        page = explain_page(explanations, pngs)
        (temporary / PAGE_FILE).write_text(page, encoding="utf-8")
    return target


def overlay_png(image: ImageMap, size: float = 3.0) -> bytes:
    """The image in grey (or colour) with its attribution map over it: red raises the explained
    output, blue lowers it; the colour bar gives the scale."""
    from matplotlib.figure import Figure

    pixels = np.moveaxis(image.pixels, 0, -1)  # (H, W, C)
    figure = Figure(figsize=(size * 1.25, size), dpi=100)
    axes = figure.add_subplot()
    if pixels.shape[2] == 1:
        axes.imshow(pixels[:, :, 0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    else:
        axes.imshow(pixels[:, :, :3], interpolation="nearest")
    limit = float(np.abs(image.values).max()) or 1.0
    opacity = 0.8 * np.abs(image.values) / limit  # where nothing is attributed, the image shows
    heat = axes.imshow(
        image.values, cmap="bwr", vmin=-limit, vmax=limit, alpha=opacity, interpolation="nearest"
    )
    figure.colorbar(heat, ax=axes, fraction=0.046, pad=0.04)
    axes.set_axis_off()
    axes.set_title(f"{image.column}, row {image.row}", fontsize=9)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()
