"""benchmarks/privacy.py in its --quick mode: every row it prints has its figures."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import REPO


@pytest.mark.slow
def test_privacy_benchmark_runs_quick() -> None:
    result = subprocess.run(
        [sys.executable, "benchmarks/privacy.py", "--quick"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(row["task"], row["epsilon"]) for row in rows[:2]] == [("table", 3.0), ("table", "inf")]
    assert 0 < rows[0]["epsilon_spent"] <= 3.0 and rows[1]["epsilon_spent"] is None
    assert rows[0]["epoch_seconds"] > 0 and rows[1]["accuracy_vs_non_private"] == 1.0
    assert rows[2]["per_sample_vs_non_private"] > 0 and rows[2]["ghost_vs_non_private"] > 0
    audit = rows[3]
    assert audit["task"] == "audit"
    assert 0 <= audit["non_private_loss_threshold_auc"] <= 1
    assert 0 <= audit["private_eps3_likelihood_ratio_tpr_at_1pct_fpr"] <= 1
