"""Pieces of the report: metrics.jsonl parsing, column summaries, formatting, thumbnails."""

from __future__ import annotations

import io
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
from PIL import Image

from megalith.evaluate.html import format_number, slug, thumbnail
from megalith.evaluate.report import learning_curve_plots, read_metrics_log
from megalith.evaluate.summary import describe_fitted, split_sizes


def _write_log(path: Path) -> None:
    records = [
        {"epoch": 1, "step": 10, "train/loss": 2.0, "lr": 0.1, "val/loss": 1.9, "val/r2": 0.1,
         "time": 0.5},
        {"step": 15, "epoch": 2, "train/loss": 1.2},
        {"epoch": 2, "step": 20, "train/loss": 1.0, "lr": 0.1, "val/loss": None, "val/r2": 0.5,
         "time": 0.5},
        {"step": 25, "epoch": 3, "train/loss": 0.8},
    ]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def test_metrics_log_splits_epochs_from_steps(tmp_path: Path) -> None:
    _write_log(tmp_path / "metrics.jsonl")
    history = read_metrics_log(tmp_path / "metrics.jsonl")
    assert len(history.epochs) == 2 and len(history.steps) == 2
    assert history.curve_keys() == ["train/loss", "val/loss", "val/r2"]
    epochs, values = history.series("val/loss")
    assert epochs == [1, 2] and values[0] == 1.9 and np.isnan(values[1])  # null -> NaN
    plots = learning_curve_plots(history)
    assert [p.slug for p in plots] == ["loss", "metric-r2", "loss-by-step"]
    assert read_metrics_log(tmp_path / "absent.jsonl").epochs == []


def test_fitted_preprocessing_in_words() -> None:
    number = SimpleNamespace(normalize="standard", missing="mean")
    text = describe_fitted("number", "input", number, {"mean": 2.5, "std": 1, "min": 0, "max": 9})
    assert "mean 2.5" in text and "range 0 to 9" in text and "standard" in text
    image = describe_fitted(
        "image", "input", None, {"size": [8, 8], "channels": 1, "mean": [0.3], "std": [0.4]}
    )
    assert image.startswith("8 x 8 px, 1 channel")
    classes = describe_fitted("category", "output", None, {"classes": list(range(12))})
    assert classes.startswith("12 classes: 0, 1") and classes.endswith("…")
    binary = describe_fitted(
        "binary", "output", SimpleNamespace(threshold=0.5), {"values": ["no", "yes"], "mode": 1}
    )
    assert "positive: yes" in binary and "threshold 0.5" in binary
    tokenizer = {"kind": "word", "lowercase": True, "vocabulary": ["a", "b"]}
    words = describe_fitted("text", "input", None, {"tokenizer": tokenizer, "max_length": 7})
    assert words == "word tokenizer, 6 token ids, max length 7 tokens"
    steps = describe_fitted(
        "sequence",
        "input",
        SimpleNamespace(normalize=True, encoder=SimpleNamespace(kind="lstm")),
        {"mean": 1.5, "std": 2, "max_length": 30},
    )
    assert steps == "last 30 steps kept; normalised with mean 1.5, std 2; lstm encoder"


def test_split_sizes() -> None:
    splits = {"train": pd.DataFrame({"a": range(8)}), "val": pd.DataFrame({"a": range(2)})}
    assert split_sizes(splits) == [("train", 8, "80%"), ("val", 2, "20%")]


def test_format_number_and_slug() -> None:
    assert format_number(28522) == "28,522"
    assert format_number(0.96666) == "0.9667"
    assert format_number(float("nan")) == "-" and format_number(None) == "-"
    assert format_number(True) == "yes" and format_number("cnn") == "cnn"
    assert format_number(12345.6) == "12,346"
    assert slug("price/usd ok") == "price-usd-ok"


def test_thumbnail_enlarges_small_images_without_smoothing() -> None:
    pixels = np.zeros((1, 2, 2), dtype=np.uint8)
    pixels[0, 0, 0] = 255
    image = Image.open(io.BytesIO(thumbnail(pixels, size=64)))
    assert image.size == (64, 64)
    assert image.getpixel((0, 0)) == 255 and image.getpixel((31, 31)) == 255
    assert image.getpixel((32, 32)) == 0  # nearest neighbour: hard edges
    rgb = Image.open(io.BytesIO(thumbnail(np.full((3, 200, 100), 9, dtype=np.uint8), size=64)))
    assert rgb.size == (32, 64) and rgb.mode == "RGB"
