"""`megalith init` on image tables: downsampling, augmentation, a CNN, steps scaled to the rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from megalith.config import validate_config
from megalith.data.infer import infer_config
from megalith.data.sources import Table


def _table(folder: Path, rows: int, size: tuple[int, int], split: bool = False) -> Table:
    rng = np.random.default_rng(0)
    height, width = size
    names = []
    for i in range(min(rows, 4)):  # init reads only the first image's header
        Image.fromarray(rng.integers(0, 256, (height, width), np.uint8)).save(folder / f"{i}.png")
    names = [f"{i % 4}.png" for i in range(rows)]
    frame = pd.DataFrame({"face": names, "person": [f"p{i % 40}" for i in range(rows)]})
    if split:
        frame["split"] = np.where(np.arange(rows) < rows // 2, "train", "test")
    return Table(frame, folder, "faces.csv")


def test_small_table_of_large_images_gets_downsampling_augmentation_and_enough_steps(
    tmp_path: Path,
) -> None:
    inference = infer_config(
        _table(tmp_path, 400, (112, 92), split=True), "person", source="faces.csv"
    )
    config = inference.config
    assert config["inputs"][0]["max_side"] == 32
    assert config["inputs"][0]["augment"]["rotate"] > 0
    assert "flip" not in config["inputs"][0]["augment"]
    assert config["model"]["arch"] == "cnn"
    train = config["train"]
    # 200 train rows, 10% held out for val: 180 rows, 6 steps per epoch, ~1,000 steps
    assert train["epochs"] == 167 and train["batch_size"] == 32
    assert train["schedule"] == {"name": "cosine", "warmup_steps": 50}
    assert train["early_stop"]["patience"] == 41
    notes = "\n".join(inference.notices)
    assert "shrunk once" in notes and "112 px" in notes and "1002 steps" in notes
    validate_config(config, origin="init")


def test_larger_tables_keep_at_least_thirty_epochs_and_small_images_keep_their_size(
    tmp_path: Path,
) -> None:
    config = infer_config(_table(tmp_path, 20_000, (8, 8)), "person", source="faces.csv").config
    assert "max_side" not in config["inputs"][0]
    assert config["train"]["epochs"] == 30
    assert config["train"]["batch_size"] == 128  # as for any table of 20,000 rows
