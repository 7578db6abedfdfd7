"""`init --private` on an image folder: the image defaults' note on epochs and early stopping
is replaced, and the warm-up follows the private run's steps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from megalith.data.infer import infer_config
from megalith.data.infer_private import private_batch_size, with_privacy
from megalith.data.sources import DataConfig, load_data


def test_a_private_image_config_says_nothing_stale(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for label in ("cat", "dog"):
        (tmp_path / label).mkdir()
        for i in range(40):
            pixels = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / label / f"{i}.png")
    table = load_data(DataConfig(source=str(tmp_path)))
    inference = infer_config(table, "label", source=str(tmp_path))
    assert any("early stopping after" in note for note in inference.notices)
    private = with_privacy(inference, 8.0, 64)
    train = private.config["train"]
    assert "early_stop" not in train and train["batch_size"] == private_batch_size(64) == 16
    steps = train["epochs"] * 4  # 64 rows in batches of 16
    assert train["schedule"]["warmup_steps"] == round(steps / 20)  # 5%, as before
    assert not any("early stopping after" in note for note in private.notices)
    assert any("small CNN" in note for note in private.notices)  # the model's note stays
    assert any("max_grad_norm 5" in note for note in private.notices)  # the clip, and why
    assert any(f"warmed up over the first {round(steps / 20)}" in n for n in private.notices)
