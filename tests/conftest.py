"""Shared fixtures: small tables written to disk, and a runner for the real CLI."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (`-n auto`), each worker gets its share of the cores: torch's default of
    one thread per core in every worker oversubscribes them (a small MLP's 150 steps took 19 s
    instead of 0.4 s on a loaded 2-core machine). The CLI subprocesses tests start inherit it."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        threads = max(1, (os.cpu_count() or 1) // workers)
        os.environ["OMP_NUM_THREADS"] = str(threads)
        torch.set_num_threads(threads)


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


@dataclass
class Outcome:
    """What a CLI call in this process gave: exit code and what it printed."""

    code: int
    stdout: str
    stderr: str


def run_cli(*args: str | Path) -> Outcome:
    """`megalith ARGS` through the CLI's entry point in this process (in the current folder):
    faster than a subprocess, with the real exit code and messages."""
    from megalith.cli import main

    out, err = io.StringIO(), io.StringIO()
    argv = sys.argv
    sys.argv = ["megalith", *map(str, args)]
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    finally:
        sys.argv = argv
    return Outcome(code, out.getvalue(), err.getvalue())
