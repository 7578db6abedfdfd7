"""The explain folder (default RUN/explain):

    explanations.jsonl   one object per row: the prediction, the explained class, one value
                         per input column, a text's (word, value) pairs, a sequence's steps
    summary.json         method, global importance per column, trust figures, steps
    images/ROW-COL.png   an image input's attribution map over the image, for the first
                         IMAGES_DRAWN rows (drawing is most of what writing costs)
    image_maps.safetensors  every row's image attribution map (H, W) float32, by "ROW-COL"
    attention.jsonl      Transformer inputs and GPT runs: per row and input, the tokens and each
                         layer's attention weights averaged over heads (token x token)
    attention/ROW-COL.png  the first rows' maps, one panel per layer and head
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
    from megalith.explain import AttentionMap, Explanations, ImageMap

SUMMARY_FILE = "summary.json"
ROWS_FILE = "explanations.jsonl"
PAGE_FILE = "explain.html"
ATTENTION_FILE = "attention.jsonl"
IMAGES_FILE = "image_maps.safetensors"
IMAGES_DRAWN = 20
"""Rows whose image maps are drawn as PNGs (per input): matplotlib takes about 0.2 s a PNG
(on the shared 2-core machine, under load), more than Integrated Gradients takes per row;
image_maps.safetensors holds every row's map."""
ATTENTION_DRAWN = 5
"""Rows whose attention maps are drawn (per input); attention.jsonl holds every row's."""
LABELLED_TOKENS = 32
"""Attention maps over at most this many tokens have the tokens written along their axes."""


def check_explain_folder(folder: str | Path, overwrite: bool) -> None:
    """`folder` can take explanations: new, empty, or (with `overwrite`) an earlier explain
    folder. The CLI checks it before explaining, so that a mistake costs no waiting.

    Raises:
        RunError: its parent is missing, it is a file, it holds other files, or it holds
            explanations and `overwrite` is off.
    """
    check_output_folder(
        Path(folder), overwrite, markers=[SUMMARY_FILE, ROWS_FILE], holds="explanations",
        replace="them",
    )  # fmt: skip


def write_explanations(
    explanations: Explanations, folder: str | Path, *, overwrite: bool = False
) -> Path:
    """Write the explain folder; returns it.

    Raises:
        RunError: the folder holds other files, or an earlier explanation without `overwrite`,
            or cannot be written.
    """
    from megalith.explain.page import attention_name, explain_page

    target = Path(folder)
    check_explain_folder(target, overwrite)
    with staged_folder(target) as temporary:
        pngs = _image_pngs(explanations.images)
        if pngs:
            (temporary / "images").mkdir()
        if explanations.images:
            _save_image_maps(explanations.images, temporary / IMAGES_FILE)
        drawn: dict[str, int] = {}
        for found in explanations.attention:
            drawn[found.input] = drawn.get(found.input, 0) + 1
            if drawn[found.input] <= ATTENTION_DRAWN:
                pngs[attention_name(found)] = attention_png(found)
        if explanations.attention:
            (temporary / "attention").mkdir()
            lines = [json.dumps(found.as_json(), default=str) for found in explanations.attention]
            (temporary / ATTENTION_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
        for name, png in pngs.items():
            (temporary / name).write_bytes(png)
        lines = [json.dumps(row, default=str) for row in explanations.rows]
        (temporary / ROWS_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
        summary = json.dumps(explanations.summary, indent=1, default=str)
        (temporary / SUMMARY_FILE).write_text(summary, encoding="utf-8")
        page = explain_page(explanations, pngs)
        (temporary / PAGE_FILE).write_text(page, encoding="utf-8")
    return target


def _image_pngs(images: list[ImageMap]) -> dict[str, bytes]:
    """The PNG of each image map of the first IMAGES_DRAWN rows (per input), by file name."""
    from megalith.explain.page import image_name

    drawn: dict[str, int] = {}
    pngs = {}
    for image in images:
        drawn[image.column] = drawn.get(image.column, 0) + 1
        if drawn[image.column] <= IMAGES_DRAWN:
            pngs[image_name(image)] = overlay_png(image)
    return pngs


def _save_image_maps(images: list[ImageMap], path: Path) -> None:
    """Every row's image attribution map (H, W) float32, keyed "ROW-COLUMN" (safetensors)."""
    from safetensors.numpy import save_file

    from megalith.explain.page import image_name

    maps = {
        image_name(image).removeprefix("images/").removesuffix(".png"): np.ascontiguousarray(
            image.values, dtype=np.float32
        )
        for image in images
    }
    save_file(maps, str(path))


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


def attention_png(found: AttentionMap, size: float = 2.2) -> bytes:
    """A grid of heat maps, one row per layer and one column per head: the weight each query
    token (down) gave each key token (across), 0 to 1."""
    from matplotlib.figure import Figure

    layers, heads = found.weights.shape[:2]
    figure = Figure(figsize=(size * heads + 0.8, size * layers + 0.4), dpi=100)
    grid = figure.subplots(layers, heads, squeeze=False)
    count = len(found.tokens)
    heat = None
    for layer in range(layers):
        for head in range(heads):
            axes = grid[layer][head]
            heat = axes.imshow(
                found.weights[layer, head], cmap="viridis", vmin=0, vmax=1, interpolation="nearest"
            )
            axes.set_title(f"layer {layer + 1}, head {head + 1}", fontsize=8)
            keys = found.keys if found.keys is not None else found.tokens
            if max(count, len(keys)) <= LABELLED_TOKENS:
                axes.set_xticks(range(len(keys)), keys, rotation=90, fontsize=6)
                axes.set_yticks(range(count), found.tokens, fontsize=6)
            else:
                axes.set_xticks([])
                axes.set_yticks([])
    if heat is not None:
        figure.colorbar(heat, ax=grid, fraction=0.02, pad=0.02)
    figure.suptitle(f"{found.input}, row {found.row}: attention (query down, key across)")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()
