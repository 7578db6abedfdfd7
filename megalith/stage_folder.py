"""The folder a stage writes (an export's bundle, an explanation): checked before any work,
built in a temporary sibling, and moved into place whole, so a half-written one never exists."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from megalith.errors import RunError, cannot_write


def check_output_folder(
    target: Path, overwrite: bool, *, markers: Sequence[str], holds: str, replace: str
) -> None:
    """`target` must be new, empty, or (with `overwrite`) an earlier output of the same stage,
    recognised by its `markers` files.

    Raises:
        RunError: its parent folder is missing, it is a file, it holds other files, or it holds
            `holds` ("a bundle") and `overwrite` is off (the message says `replace`, "it").
    """
    if not target.exists():
        if not target.parent.is_dir():
            raise RunError(f"--output {target}: its folder {target.parent} does not exist")
        return
    if not target.is_dir():
        raise RunError(f"--output {target} is a file; choose a folder")
    if not any(target.iterdir()):
        return
    if not all((target / marker).is_file() for marker in markers):
        raise RunError(f"--output {target} holds other files; choose a new or empty folder")
    if not overwrite:
        raise RunError(
            f"--output {target} already holds {holds}; pass --overwrite to replace {replace}"
        )


def temporary_folder(target: Path) -> Path:
    """A new folder beside `target`, readable as an ordinary folder is (mkdtemp makes it 0700).

    Raises:
        RunError: the parent folder cannot be written.
    """
    try:
        folder = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        umask = os.umask(0)
        os.umask(umask)
        folder.chmod(0o777 & ~umask)
        return folder
    except OSError as error:
        raise cannot_write(target, error, "choose a writable --output folder") from error


def move_into_place(folder: Path, target: Path) -> None:
    """Replace `target` (absent, empty, or an earlier output that check_output_folder allowed)
    with `folder`."""
    if target.exists():
        shutil.rmtree(target)
    folder.rename(target)


@contextlib.contextmanager
def staged_folder(target: Path) -> Iterator[Path]:
    """A temporary folder beside `target` to write the output into; when the block ends
    without an error it replaces `target` (see move_into_place), and it is removed either way.

    Raises:
        RunError: a write failed (disk full, read-only), naming `target`.
    """
    folder = temporary_folder(target)
    try:
        with _sigterm_as_interrupt():
            yield folder
            move_into_place(folder, target)
    except OSError as error:
        raise cannot_write(target, error, "choose a writable --output folder") from error
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt while the block runs, as Ctrl-C does, so the staged
    folder is cleaned up; by default SIGTERM ends Python at once, leaving it behind. (Training
    inside the block installs its own handler for its loop and puts this one back.)"""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set signal handlers
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
