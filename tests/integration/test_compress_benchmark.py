"""benchmarks/compression.py in its quick mode: its code runs and its figures hang together.

The chain case is left to tests/integration/test_compress.py (the same steps on a smaller model):
on the benchmark's text task it alone took over two minutes of CI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import REPO


@pytest.mark.slow
def test_compression_benchmark_runs_in_quick_mode() -> None:
    result = subprocess.run(
        [sys.executable, "benchmarks/compression.py", "--quick", "--only", "cnn"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    cnn, machine = (json.loads(line) for line in result.stdout.splitlines())
    assert cnn["case"] == "cnn" and cnn["scheme"] == "static"
    assert cnn["speedup_batch1"] > 0 and cnn["speedup_batch32"] > 0
    assert cnn["smaller"] > 1  # int8 weights, even in a tiny graph
    (verdict,) = cnn["verdicts"]
    assert verdict["accepted"] == (not verdict["reasons"])
    assert machine["machine"]["cores"] >= 1 and machine["runs"] == 5
