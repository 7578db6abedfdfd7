"""Images from paths and folders, mixed with table columns; errors in the data before step 0."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from conftest import REPO, CliResult
from PIL import Image
from safetensors.torch import load_file

import megalith as mg
from megalith.errors import DataError

Cli = Callable[..., CliResult]


def _shape_image(kind: str, rng: np.random.Generator) -> Image.Image:
    """A noisy 16x16 RGB picture of a horizontal or a vertical bar."""
    pixels = rng.integers(0, 60, (16, 16, 3)).astype(np.uint8)
    offset = int(rng.integers(3, 12))
    if kind == "horizontal":
        pixels[offset : offset + 3, 2:14] = 230
    else:
        pixels[2:14, offset : offset + 3] = 230
    return Image.fromarray(pixels)


def _image_table(root: Path, rows: int = 160) -> pd.DataFrame:
    """Label = bar orientation XOR (size > 0): needs the image and the number together."""
    rng = np.random.default_rng(0)
    (root / "img").mkdir(parents=True)
    records = []
    for i in range(rows):
        kind = ["horizontal", "vertical"][i % 2]
        _shape_image(kind, rng).save(root / "img" / f"{i}.png")
        size = float(rng.normal())
        label = "a" if (kind == "horizontal") == (size > 0) else "b"
        records.append({"picture": f"img/{i}.png", "size": size, "label": label})
    return pd.DataFrame(records)


def test_image_paths_and_numbers_train_as_one_model(tmp_path: Path) -> None:
    _image_table(tmp_path).to_csv(tmp_path / "table.csv", index=False)
    config = {
        "data": {"source": str(tmp_path / "table.csv"), "split": {"val": 0.15, "test": 0.15}},
        "inputs": [{"name": "picture", "type": "image"}, {"name": "size", "type": "number"}],
        "outputs": [{"name": "label", "type": "category"}],
        "model": {"arch": "cnn", "channels": [16, 32], "hidden": [32]},
        "train": {"epochs": 40, "batch_size": 16, "optimizer": {"lr": 3e-3}},
    }
    run = mg.train(config, output_dir=tmp_path / "run")
    assert run.metrics["test"]["accuracy"] >= 0.8


def test_image_folder_trains_and_predicts(cli: Cli, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    for kind in ("horizontal", "vertical"):
        (tmp_path / "shapes" / kind).mkdir(parents=True)
        for i in range(40):
            _shape_image(kind, rng).save(tmp_path / "shapes" / kind / f"{i}.png")
    config = {
        "data": {"source": "shapes"},
        "inputs": [{"name": "image", "type": "image", "channels": 1}],
        "outputs": [{"name": "label", "type": "category"}],
        "model": {"arch": "resnet", "channels": [8, 16], "blocks": [1, 1]},
        "train": {"epochs": 15, "batch_size": 16},
    }
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(config))
    result = cli("train", "cfg.yaml", "-o", "run")
    assert result.returncode == 0, result.stderr
    predicted = cli("predict", "run", "--data", "shapes", "--output", "pred.jsonl")
    assert predicted.returncode == 0, predicted.stderr
    predictions = pd.read_json(tmp_path / "pred.jsonl", lines=True)
    assert len(predictions) == 80
    # the folder's own `label` column is kept; the prediction is renamed beside it
    assert (predictions["label"] == predictions["label_predicted"]).mean() > 0.9


def test_same_seed_gives_identical_weights(tmp_path: Path) -> None:
    config = {
        "data": {"source": "builtin:synthetic_classification"},
        "inputs": [{"name": "age", "type": "number"}, {"name": "city", "type": "category"}],
        "outputs": [{"name": "label", "type": "category"}],
        "train": {"epochs": 2},
    }
    for name in ("a", "b"):
        mg.train(config, output_dir=tmp_path / name)
    a, b = (load_file(tmp_path / n / "model.safetensors") for n in ("a", "b"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_bf16_on_cpu_with_clipping_trains(tmp_path: Path) -> None:
    overrides = ["train.epochs=3", "train.precision=bf16", "train.clip_grad_norm=1.0"]
    run = mg.train(
        REPO / "examples" / "digits.yaml", output_dir=tmp_path / "run", overrides=overrides
    )
    assert run.metrics["test"]["accuracy"] > 0.8


def test_empty_split_is_reported(tmp_path: Path) -> None:
    pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": ["a", "b", "a", "b"]}).to_csv(
        tmp_path / "t.csv", index=False
    )
    config = {
        "data": {"source": str(tmp_path / "t.csv"), "split": {"val": 0.1, "test": 0.1}},
        "inputs": [{"name": "x", "type": "number"}],
        "outputs": [{"name": "y", "type": "category"}],
    }
    with pytest.raises(DataError, match="test"):
        mg.train(config, output_dir=tmp_path / "run")
