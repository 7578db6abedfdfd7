"""benchmarks/asr_speed.py in its tiny mode: it trains, exports and times both backends, and the
bundle's transcripts equal the run's."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import REPO


@pytest.mark.slow
def test_asr_speed_benchmark_runs_in_tiny_mode() -> None:
    args = ["benchmarks/asr_speed.py", "--tiny", "--repeats", "1", "--long-seconds", "8"]
    result = subprocess.run(
        [sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [row.get("workload") for row in rows[:2]] == ["clips", "long"]
    for row in rows[:2]:
        assert row["onnx_equals_torch"] is True
        assert row["torch"]["x_real_time"] > 0 and row["onnx"]["rtf"] > 0
    assert rows[1]["files"] < rows[0]["files"]  # the long workload joins the clips
    assert rows[2]["goal_x_real_time"] == 50 and rows[2]["onnx_vs_torch_clips"] > 0
