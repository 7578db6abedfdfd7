"""The benchmarks' own code, exercised in their small modes on whatever device is here."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
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


def _rows(*args: str) -> list[dict]:
    result = subprocess.run(
        [sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.mark.slow
def test_loop_benchmark_runs_the_cnn_workloads_in_tiny_mode() -> None:
    rows = _rows("benchmarks/loop_overhead.py", "--tiny", "--only", "digits-cnn", "resnet-64")
    assert [row["workload"] for row in rows] == ["digits-cnn", "resnet-64"]
    for row in rows:
        assert row["rows"] == 40 and row["megalith_samples_per_s"] > 0
        # convolutional workloads are also compared with a channels-last plain loop
        assert row["plain_fused_adamw_channels_last_samples_per_s"] > 0
        assert row["ratio_vs_fused_channels_last"] > 0


def test_predict_latency_benchmark_runs_in_tiny_mode() -> None:
    args = ["--tiny", "--batches", "1", "4", "--only", "digits-cnn", "resnet-64"]
    rows = _rows("benchmarks/predict_latency.py", *args)
    assert [(row["workload"], row["batch"]) for row in rows] == [
        ("digits-cnn", 1),
        ("digits-cnn", 4),
        ("resnet-64", 1),
        ("resnet-64", 4),
    ]
    assert all(row["torch_default_ms"] > 0 and row["megalith_ms"] > 0 for row in rows)
    assert all(row["speedup"] > 0 for row in rows)
