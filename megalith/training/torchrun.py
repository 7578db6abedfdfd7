"""torchrun (`torch.distributed.run`) as `megalith train --devices N` starts it, without its
traceback when a process fails.

Each process already says why it stopped, in one line (`error: ...`, or the resume command after
SIGTERM); torchrun then raises ChildFailedError, whose traceback and failure table would follow
that line and end the command with exit code 1. Here the command instead ends with the first
failed process's own exit code (143 after SIGTERM, 2 for a bad config or table), and a process
killed by a signal (which said nothing) is named in one line. torchrun itself stopped by a
signal (SIGTERM to the command) ends with 128 + that signal, without its traceback.
"""

from __future__ import annotations

import signal
import sys
from typing import Any


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


def main(argv: list[str] | None = None) -> int:
    """Run torchrun with `argv` (its own command line); returns the exit code."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    try:
        run(parse_args(argv))
    except ChildFailedError as failed:
        return exit_code(failed)
    except SignalException as stopped:  # SIGTERM / SIGINT to torchrun: the processes were
        return 128 + int(stopped.sigval)  # stopped, and each said where to resume
    return 0


if __name__ == "__main__":
    sys.exit(main())
