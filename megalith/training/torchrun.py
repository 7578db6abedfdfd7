"""torchrun (`torch.distributed.run`) as `megalith train --devices N` starts it, without its
traceback when a process fails.

Each process already says why it stopped, in one line (`error: ...`, or the resume command after
SIGTERM); torchrun then raises ChildFailedError, whose traceback and failure table would follow
that line and end the command with exit code 1. Here the command instead ends with the first
failed process's own exit code (143 after SIGTERM, 2 for a bad config or table), and a process
killed by a signal (which said nothing) is named in one line. torchrun itself stopped by a
signal (SIGTERM to the command) ends with 128 + that signal, without its traceback.

An error every process meets after they start is printed once (megalith.training.worker_errors),
without torchrun's log lines about the failed process and the others it stops.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

ROUTINE = (
    "failed (exitcode: ",
    "Sending process ",
    "Closing process ",
    "Received %s death signal",
)
"""torchrun's log lines (torch.distributed.elastic.multiprocessing.api) about a process that
failed and the others it stops, and torchrun's agent's about a signal it got: the processes
said why (a signal's stop: the resume command), and exit_code names a killed one."""


def _not_routine(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(ROUTINE)


def exit_code(failed: Any) -> int:
    """The exit code for a torchrun ChildFailedError: its first failure's own, or 128 + the
    signal that killed it (said on stderr, as that process could not)."""
    rank, failure = failed.get_first_failure()
    if failure.exitcode > 0:
        return int(failure.exitcode)
    number = -int(failure.exitcode)
    try:
        name = signal.Signals(number).name
    except ValueError:
        name = f"signal {number}"
    print(
        f"error: process rank {rank} (pid {failure.pid}) was killed by {name}; the last complete "
        "checkpoint is kept (resume with `megalith train --resume RUN`)",
        file=sys.stderr,
    )
    return 128 + number if number > 0 else 1


def act_on_first_signal_only() -> None:
    """Make torchrun stop its processes on the first SIGTERM / SIGINT it gets and ignore the
    ones that follow: Ctrl-C reaches it both from the terminal and through `megalith train
    --devices N` (which passes the signals it gets on), and torchrun's own handler raises
    again on each, cutting short its shutdown of the processes (which then lose its store
    while they write their checkpoint)."""
    from torch.distributed.elastic.multiprocessing import api

    original = getattr(api, "_terminate_process_handler", None)  # private: may go in a release
    if original is None or getattr(original, "megalith_once", False):
        return  # without it, a second signal cuts torchrun's shutdown short, as before
    fired: list[int] = []

    def once(signum: int, frame: FrameType | None) -> None:
        if fired:
            return
        fired.append(signum)
        original(signum, frame)

    once.megalith_once = True  # type: ignore[attr-defined]
    api._terminate_process_handler = once


def main(argv: list[str] | None = None) -> int:
    """Run torchrun with `argv` (its own command line); returns the exit code."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    from megalith.training.worker_errors import ERRORS_DIR, other_ranks_errors

    logging.getLogger("torch.distributed.elastic.multiprocessing.api").addFilter(_not_routine)
    logging.getLogger("torch.distributed.elastic.agent.server.api").addFilter(_not_routine)
    act_on_first_signal_only()
    try:
        run(parse_args(argv))
    except ChildFailedError as failed:
        code = exit_code(failed)
        if os.environ.get(ERRORS_DIR):
            for line in other_ranks_errors(Path(os.environ[ERRORS_DIR])):
                print(line, file=sys.stderr)
        return code
    except SignalException as stopped:  # SIGTERM / SIGINT to torchrun: the processes were
        return 128 + int(stopped.sigval)  # stopped, and each said where to resume
    return 0


if __name__ == "__main__":
    sys.exit(main())
