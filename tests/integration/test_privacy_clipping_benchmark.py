"""benchmarks/privacy_clipping.py --quick: one row with both clipping modes timed."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import REPO


@pytest.mark.slow
def test_privacy_clipping_benchmark_runs_quick() -> None:
    result = subprocess.run(
        [sys.executable, "benchmarks/privacy_clipping.py", "--quick"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (row,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert row["model"] == "mlp-quick" and row["batch_size"] == 64
    assert row["per_sample_vs_non_private"] > 0 and row["ghost_vs_non_private"] > 0
    assert row["faster"] in ("ghost", "per_sample")
    assert row["linear_embedding_share"] == 1.0 and row["auto_takes"] == "ghost"
