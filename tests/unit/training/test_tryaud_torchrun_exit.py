"""`megalith train --devices N` runs torchrun through megalith.training.torchrun: a process that
stops with its own one-line error (or after SIGTERM, exit 143) ends the command with that exit
code and no torchrun traceback; a process killed by a signal is named in one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # starts torchrun's agent and a process (~5 s each)


def _torchrun(tmp_path: Path, body: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "rank.py"
    script.write_text(body)
    command = [sys.executable, "-m", "megalith.training.torchrun", "--standalone"]
    command += ["--nproc_per_node=1", "--max-restarts=0", str(script)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)


def test_a_process_stopped_by_sigterm_ends_the_command_with_143_and_no_traceback(tmp_path):
    done = _torchrun(
        tmp_path, "import sys\nprint('error: stopped by SIGTERM', file=sys.stderr)\nsys.exit(143)\n"
    )
    assert done.returncode == 143
    assert "error: stopped by SIGTERM" in done.stderr
    assert "Traceback" not in done.stderr and "ChildFailedError" not in done.stderr


def test_a_process_killed_by_a_signal_is_named_in_one_line(tmp_path):
    done = _torchrun(tmp_path, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    assert done.returncode == 137
    assert "Traceback" not in done.stderr
    assert "error: process rank 0" in done.stderr and "SIGKILL" in done.stderr


def test_a_run_that_succeeds_exits_0(tmp_path):
    assert _torchrun(tmp_path, "print('ok')\n").returncode == 0
