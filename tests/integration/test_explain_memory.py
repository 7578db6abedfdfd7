"""Memory stays flat over many explanations in one process (the issue asks for 1,000; 200 here)."""

from __future__ import annotations

import gc
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import megalith as mg

pytestmark = pytest.mark.slow  # trains a small model, then explains 200 times


def _resident_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def test_resident_memory_does_not_grow_over_200_explanations(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for kind in ("dark", "light"):
        (tmp_path / "images" / kind).mkdir(parents=True)
        for i in range(10):
            low = 0 if kind == "dark" else 120
            pixels = rng.integers(low, low + 120, (8, 8, 3)).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / "images" / kind / f"{i}.png")
    config = {
        "data": {"source": str(tmp_path / "images"), "split": {"val": 0.2, "test": 0.2}},
        "inputs": [{"name": "image", "type": "image", "channels": 3}],
        "outputs": [{"name": "label", "type": "category"}],
        "model": {"arch": "mlp", "hidden": [16]},
        "train": {"epochs": 1, "batch_size": 8, "baselines": False},
    }
    run = mg.train(config, output_dir=tmp_path / "run")
    table, splits = run.data_splits()
    frame, resident = splits["test"], []
    for i in range(200):  # attributions, the trust checks, the image maps
        explanations = run.explain(frame, rows=1 + i % 2, base_dir=table.base_dir)
        assert explanations.rows
        if i in (19, 199):
            gc.collect()
            resident.append(_resident_mb())
    # allocator noise is a few MB; a leak of one explanation's tensors per call would be more
    assert resident[1] - resident[0] < 16, resident
