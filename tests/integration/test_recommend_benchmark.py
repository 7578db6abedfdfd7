"""benchmarks/recommend_baselines.py in its quick mode: every recommender is scored on the
same split and the comparison is printed."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import REPO


@pytest.mark.slow  # implicit's ALS, BPR and item-kNN and a Megalith run on tiny data
def test_the_baseline_comparison_runs_on_planted_data() -> None:
    result = subprocess.run(
        [sys.executable, "benchmarks/recommend_baselines.py", "planted", "--quick"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {line.split()[0] for line in result.stdout.splitlines() if line.strip()}
    assert {"megalith", "als", "bpr", "item_knn", "most_popular", "oracle"} <= rows
    assert "points of sampled HR@10" in result.stdout


@pytest.mark.slow  # three small two_tower runs per dataset
def test_the_cold_start_comparison_runs_on_planted_data() -> None:
    result = subprocess.run(
        [sys.executable, "benchmarks/recommend_cold_start.py", "planted", "--quick"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "id-only = most popular" in result.stdout
    assert "points of sampled HR@10" in result.stdout
