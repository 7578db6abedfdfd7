"""One error line for a `megalith train --devices N` run that fails after its processes start.

A mistake found only once the processes run (a column missing from the table, a file that
cannot be read) is found by every process alike: each would print the same `error: ...` line.
Under `--devices` (megalith.training.distributed.launch) rank 0 prints it, every process also
leaves its line in the folder ERRORS_DIR names, and the others exit quietly with the same code;
when torchrun has stopped them, the launcher prints the lines of other ranks that differ from
rank 0's (an error one process alone met), once each, naming the rank.
"""

from __future__ import annotations

import os
from pathlib import Path

ERRORS_DIR = "MEGALITH_ERRORS_DIR"
"""The environment variable naming the folder the processes of one launch leave errors in."""


def say_error(line: str) -> bool:
    """Leave this process's error `line` for the launcher when it is one of several started
    by `--devices`; True when this process should print it (rank 0, or any process not
    started so: a plain `torchrun` of several machines prints on every rank, as before)."""
    folder = os.environ.get(ERRORS_DIR)
    rank = int(os.environ.get("RANK", "0") or 0)
    if not folder or int(os.environ.get("WORLD_SIZE", "1") or 1) < 2:
        return True
    try:
        (Path(folder) / f"rank{rank}.txt").write_text(line, encoding="utf-8")
    except OSError:
        return True  # the launcher could not say it: this process does
    return rank == 0


def other_ranks_errors(folder: Path) -> list[str]:
    """The lines the launcher prints after its processes stopped: each distinct error of a
    rank other than 0 that rank 0 did not print, as `error: process rank N: ...`."""
    seen = {_read(folder / "rank0.txt")}
    lines: list[str] = []
    for path in sorted(folder.glob("rank*.txt"), key=lambda path: int(path.stem[4:])):
        line = _read(path)
        if line is not None and line not in seen:
            seen.add(line)
            lines.append(f"error: process rank {path.stem[4:]}: {line.removeprefix('error: ')}")
    return lines


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
