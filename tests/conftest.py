"""Shared fixtures: small tables written to disk, and a runner for the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def make_table(rows: int = 300, seed: int = 0) -> pd.DataFrame:
    """A learnable mixed table: the label depends on a number, a category and a binary column."""
    rng = np.random.default_rng(seed)
    size = rng.normal(10, 3, rows)
    color = rng.choice(["red", "green", "blue"], rows)
    member = rng.choice(["yes", "no"], rows)
    score = (size - 10) / 3 + (color == "red") * 1.5 - (color == "blue") + (member == "yes") * 0.8
    label = np.where(score > 0.7, "high", np.where(score < -0.7, "low", "mid"))
    return pd.DataFrame(
        {
            "id": np.arange(rows),
            "size": size.round(3),
            "color": color,
            "member": member,
            "constant": "same",
            "label": label,
        }
    )


@pytest.fixture
def table_csv(tmp_path: Path) -> Path:
    path = tmp_path / "table.csv"
    make_table().to_csv(path, index=False)
    return path


CliResult = subprocess.CompletedProcess[str]


@pytest.fixture
def cli(tmp_path: Path) -> Callable[..., CliResult]:
    """Run `python -m megalith ARGS` in tmp_path; returns the completed process."""

    def run(*args: str | Path, cwd: Path | None = None) -> CliResult:
        env = {**os.environ, "COLUMNS": "200"}
        return subprocess.run(
            [sys.executable, "-m", "megalith", *map(str, args)],
            cwd=cwd or tmp_path,
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )

    return run
