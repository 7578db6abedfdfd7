"""The export and serving benchmarks, run in their small modes: their code works and their
figures are consistent (the servers answer like predict; ONNX matches PyTorch)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import REPO


def _rows(*args: str) -> list[dict]:
    result = subprocess.run(
        [sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_export_speed_benchmark_runs_in_tiny_mode() -> None:
    rows = _rows("benchmarks/export_speed.py", "--tiny", "--only", "breast_cancer")
    measured = [row for row in rows if "model" in row]
    assert [(row["model"], row["batch"]) for row in measured] == [
        ("breast_cancer", 1),
        ("breast_cancer", 32),
    ]
    for row in measured:
        assert row["eager_ms"] > 0 and row["onnx_ms"] > 0 and row["ratio_model"] > 0
        assert max(row["verified"]["max_abs_difference"].values()) <= 1e-4


@pytest.mark.slow
def test_serve_load_benchmark_runs_in_tiny_mode() -> None:
    rows = _rows("benchmarks/serve_load.py", "--tiny", "--only", "digits-cnn")
    measured = [row for row in rows if "server" in row]
    servers = {row["server"] for row in measured}
    assert servers == {
        "reference",
        "megalith-unbatched",
        "megalith-batched",
        "megalith-onnx-batched",
    }
    for row in measured:
        assert row["errors"] == 0 and row["mismatches"] == 0 and row["requests_per_s"] > 0
    ratios = rows[-1]["ratios"]
    assert len(ratios) == 3 * 2  # three Megalith servers at two concurrency levels
