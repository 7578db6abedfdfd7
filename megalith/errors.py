"""Errors meant for people: each says what is wrong, where, and what to do.

The CLI prints any `MegalithError` as one or two lines and exits with `exit_code`,
without a traceback unless `--debug` is given.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path


class MegalithError(Exception):
    """Base class of every error Megalith reports to a user."""

    exit_code = 2


class ConfigError(MegalithError):
    """The config (file, overrides or Python structure) is invalid."""


class DataError(MegalithError):
    """The data is missing, malformed or does not match the config."""


class RunError(MegalithError):
    """A run directory is missing, incomplete or cannot be written."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return ' (did you mean 'x'?)' for the closest choice, or '' when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def cannot_write(path: Path, error: OSError, hint: str | None = None) -> RunError:
    """The RunError for a failed write (disk full, read-only): the path, the reason, what to do."""
    hint = hint or (
        "free some disk space or choose a writable --output-dir (a run with checkpoints "
        "continues with `megalith train --resume RUN_DIR`)"
    )
    return RunError(f"cannot write {path}: {error.strerror or error}; {hint}")
