"""`megalith init` for image tables: a config sized to the data, with the reasons as notices.

Small image datasets (a few images per class) fail with generic defaults: a network sees each
image a handful of times, at full resolution, and memorises it. What works instead, measured on
rendered characters and scikit-learn's digits (benchmarks/small_images.py, docs/vision.md):
  - downsample once at preprocessing (`max_side`), which also makes every step cheaper;
  - augment every batch (small shifts, rotations, crops, brightness / contrast), no mirroring,
    which would turn characters into other symbols;
  - a small ResNet (batch norm, residual blocks) whose stem suits the resolution;
  - enough optimiser steps: epochs scaled so that small tables still get ~STEPS updates, under a
    linear warm-up then cosine decay; early stopping with a patience scaled to the epochs.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
from PIL import Image, UnidentifiedImageError

from megalith.data.split import split_name

MAX_SIDE = 32
"""Images are shrunk so that their longer side is at most this many pixels."""
STEPS = 1000
"""Optimiser steps a small image table gets (more rows: at least MIN_EPOCHS epochs)."""
MIN_EPOCHS, MAX_EPOCHS = 30, 400
AUGMENT: dict[str, Any] = {"crop": 0.85, "rotate": 10, "shift": 0.1, "color": 0.2}
MODEL: dict[str, Any] = {"arch": "cnn", "channels": [32, 64, 128], "hidden": [128], "dropout": 0.3}
OPTIMIZER: dict[str, Any] = {"name": "adamw", "lr": 0.003, "weight_decay": 0.05}


def apply_image_defaults(
    config: dict[str, Any], frame: pd.DataFrame, base_dir: Path | None, notices: list[str]
) -> None:
    """Rewrite `config` (written by infer_config, with an image input) in place for images."""
    images = [f for f in config["inputs"] if f["type"] == "image"]
    for feature in images:
        side = _longest_side(frame[feature["name"]], base_dir)
        if side is not None and side > MAX_SIDE:
            feature["max_side"] = MAX_SIDE
            notices.append(
                f"column '{feature['name']}': images ({side} px on their longer side) are "
                f"shrunk once, when the data is encoded, to {MAX_SIDE} px (max_side): fewer "
                "weights to fit from few images, and faster steps"
            )
        feature["augment"] = dict(AUGMENT)
    names = ", ".join(f"'{f['name']}'" for f in images)
    notices.append(
        f"image input {names}: each training batch is augmented (small crops, shifts, "
        "rotations, brightness / contrast; augment), never at evaluation; add flip: horizontal "
        "for photos whose mirror image keeps the class"
    )
    rows = _train_rows(frame, config["data"]["split"])
    batch_size = int(config["train"]["batch_size"])  # by the table's rows (infer_config)
    steps_per_epoch = max(1, math.ceil(rows / batch_size))
    epochs = min(MAX_EPOCHS, max(MIN_EPOCHS, math.ceil(STEPS / steps_per_epoch)))
    total = epochs * steps_per_epoch
    config["model"] = dict(MODEL)
    config["train"].update(
        epochs=epochs,
        optimizer=dict(OPTIMIZER),
        schedule={"name": "cosine", "warmup_steps": max(1, total // 20)},
        early_stop={"metric": "val/loss", "patience": max(10, epochs // 4)},
    )
    notices.append(
        f"about {rows} train rows: {epochs} epochs of {steps_per_epoch} steps ({total} steps), "
        "learning rate warmed up over the first 5% then cosine-decayed, early stopping after "
        f"{max(10, epochs // 4)} epochs without a better val/loss"
    )  # init --private replaces this one (infer_private.py): keep the model's note apart
    notices.append("a small CNN (model.channels [32, 64, 128], each stage halving the resolution)")


def _train_rows(frame: pd.DataFrame, split: dict[str, Any]) -> int:
    """Rows the train split will hold (after val / test are held out)."""
    rows = len(frame)
    if "column" in split:
        rows = int((frame[split["column"]].map(split_name) == "train").sum())
    held_out = sum(float(split.get(name, 0.0)) for name in ("val", "test"))
    return max(1, round(rows * (1 - held_out)))


def _longest_side(values: pd.Series, base_dir: Path | None) -> int | None:
    """The longer side of the column's first readable image (its header only); None: none."""
    for cell in values.dropna().head(5):
        path = Path(str(cell))
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
        try:
            with Image.open(path) as image:
                return max(image.size)
        except (OSError, UnidentifiedImageError):
            continue
    return None
