"""`megalith train --devices N` and signals sent to the command alone: SIGTERM (`kill PID`, a
scheduler) used to end the launcher and leave torchrun and its processes training on, and
SIGINT made subprocess.call SIGKILL torchrun under its processes. The launcher now passes the
signal on and waits; torchrun acts on the first signal only (Ctrl-C reaches it twice)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from megalith.training.distributed import wait_forwarding_signals

CHILD = """
import signal, sys, time
from pathlib import Path
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
Path(sys.argv[1]).write_text("ready")
time.sleep(60)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigterm_to_the_launcher_is_passed_on_and_waited_for(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(ready)])

    def terminate_launcher() -> None:
        for _ in range(600):
            if ready.exists():
                break
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)

    before = signal.getsignal(signal.SIGTERM)
    sender = threading.Thread(target=terminate_launcher)
    sender.start()
    try:
        code = wait_forwarding_signals(child)
    finally:
        sender.join()
        if child.poll() is None:
            child.kill()
    assert code == 143  # the child stopped on the passed-on SIGTERM; the launcher lived
    assert signal.getsignal(signal.SIGTERM) is before  # the launcher's handler is restored


def test_torchrun_acts_on_the_first_signal_only(monkeypatch) -> None:
    from torch.distributed.elastic.multiprocessing import api

    from megalith.training.torchrun import act_on_first_signal_only

    monkeypatch.setattr(api, "_terminate_process_handler", api._terminate_process_handler)
    act_on_first_signal_only()
    handler = api._terminate_process_handler

    with pytest.raises(api.SignalException):
        handler(signal.SIGINT, None)
    handler(signal.SIGINT, None)  # the same Ctrl-C through the launcher: ignored
    handler(signal.SIGTERM, None)
