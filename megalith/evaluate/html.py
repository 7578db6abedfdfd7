"""Self-contained HTML pages: Jinja2 templates shipped with the package, PNGs as data URIs.

A page never refers to anything outside itself (no script, stylesheet, font or image URL); the
templates also carry a Content-Security-Policy that forbids it, so a browser would refuse.
"""

from __future__ import annotations

import base64
import io
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from PIL import Image

TEMPLATES = Path(__file__).parent / "templates"
THUMBNAIL = 64
"""Pixels on the longer side of an example image in the report."""


@dataclass(frozen=True)
class Plot:
    """A rendered plot: `slug` names its PNG under plots/, `title` captions it in the page."""

    slug: str
    title: str
    png: bytes

    @property
    def uri(self) -> str:
        return data_uri(self.png)


def data_uri(png: bytes) -> str:
    """A PNG as a data: URI, embeddable in <img src>."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def render_page(template: str, **context: Any) -> str:
    """Render one of megalith/evaluate/templates/*.j2 with autoescaping."""
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=StrictUndefined,  # a missing value is a bug in the report, not an empty cell
    )
    environment.filters["number"] = format_number
    environment.filters["slug"] = slug
    return environment.get_template(template).render(**context)


def write_atomically(path: Path, data: str | bytes) -> None:
    """Write to a temporary name in the same folder, then rename over `path`."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)  # a leftover (or planted) link is never written through
    if isinstance(data, str):
        tmp.write_text(data, encoding="utf-8")
    else:
        tmp.write_bytes(data)
    os.replace(tmp, path)


def thumbnail(pixels: np.ndarray, size: int = THUMBNAIL) -> bytes:
    """(C, H, W) uint8 pixels -> a small PNG; tiny images are enlarged without smoothing."""
    channels_last = np.ascontiguousarray(np.moveaxis(np.asarray(pixels, dtype=np.uint8), 0, -1))
    grey = channels_last.shape[2] == 1
    image = Image.fromarray(channels_last[:, :, 0] if grey else channels_last)
    scale = size / max(image.width, image.height)
    resample = Image.Resampling.NEAREST if scale >= 1 else Image.Resampling.LANCZOS
    image = image.resize(
        (max(1, round(image.width * scale)), max(1, round(image.height * scale))), resample
    )
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def format_number(value: Any, digits: int = 4) -> str:
    """Numbers for people: 4 significant digits, thousands separated, '-' for missing."""
    if value is None:
        return "-"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if not isinstance(value, (int, float, np.number)):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    number = float(value)
    if not math.isfinite(number):
        return "-"
    if number != 0 and (abs(number) >= 1e6 or abs(number) < 1e-3):
        return f"{number:.{digits - 1}e}"
    return f"{number:,.0f}" if abs(number) >= 1000 else f"{number:.{digits}g}"


def slug(text: str) -> str:
    """A file- and id-safe name: 'price/usd' -> 'price-usd'."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "output"
