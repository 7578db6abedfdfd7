"""SIGTERM to `megalith train --devices N`'s torchrun (a user stopping the command) ends it with
143 and no torchrun traceback (its SignalException used to print one after the processes'
own one-line resume notes)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # starts torchrun's agent and a process (~5 s)


def test_sigterm_to_torchrun_exits_143_without_a_traceback(tmp_path: Path) -> None:
    script = tmp_path / "rank.py"
    started = tmp_path / "started"
    script.write_text(
        "import pathlib, signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))\n"
        f"pathlib.Path({str(started)!r}).touch()\n"
        "time.sleep(60)\n"
    )
    command = [sys.executable, "-m", "megalith.training.torchrun", "--standalone"]
    command += ["--nproc_per_node=1", "--max-restarts=0", str(script)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env)
    for _ in range(600):
        if started.exists():
            break
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143
    assert "Traceback" not in stderr and "SignalException" not in stderr
