"""The GPU benchmark's own code, exercised in its small-shape mode on whatever device is here."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO


def test_gpu_benchmark_runs_in_tiny_mode() -> None:
    result = subprocess.run(
        [sys.executable, "benchmarks/gpu_throughput.py", "--tiny", "--steps", "3", "--warmup", "1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["workload"] for row in rows] == ["gpt2", "resnet50"]
    assert rows[0]["megalith_tokens_per_s"] > 0 and rows[0]["plain_tokens_per_s"] > 0
    assert rows[1]["megalith_images_per_s"] > 0 and rows[0]["ratio"] > 0
    assert 0 <= rows[0]["megalith_mfu"] < 1
