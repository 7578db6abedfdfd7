"""Every path Megalith reads or writes, checked in one place.

Reading: `check_readable` accepts a regular file or a folder that can be read, and refuses in
one line a missing path, a symlink loop, and a pipe, socket or device (reading one blocks
forever or never ends).

Writing: a run directory holds its own files. `check_confined` refuses a run where a file or
folder is a symlink leading out of it (or a loop, or a special file), so that no write or
deletion inside a run (checkpoints and their pruning, weights, reports, adapters, exports)
follows a link to somewhere else; `check_inside` is the same test for one path about to be
written, and `remove_path` deletes a link itself, never what it points at.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from megalith.errors import DataError, MegalithError, RunError

Kind = Literal["file", "folder", "any"]


def resolved(path: str | Path) -> Path:
    """The absolute path with every symlink followed; unlike `Path.resolve` on Python 3.11,
    never raises on a symlink loop (the looping part is left as written)."""
    return Path(os.path.realpath(path))


def check_readable(
    path: str | Path,
    what: str,
    *,
    kind: Kind = "any",
    error: type[MegalithError] = DataError,
    hint: str = "",
) -> Path:
    """`path`, when it is a readable regular file or folder (of `kind`).

    Args:
        path: the path as the user gave it (named so in the message).
        what: what it is, for the message ('data source', 'config file', 'model.path').
        kind: 'file', 'folder' or 'any' (either).
        error: the MegalithError subclass to raise (DataError, ConfigError, RunError).
        hint: what to do, appended to the message after '; '.

    Raises:
        error: one line naming `what` and `path`: not found, a symlink loop, not a regular file
            or folder (a FIFO, socket or device), the wrong kind, or not readable.
    """
    path = Path(path)
    tail = f"; {hint}" if hint else ""
    try:
        info = os.stat(path)
    except OSError as failure:
        if failure.errno == errno.ELOOP:
            raise error(
                f"{what} {path} is a symlink loop (a link that leads back to itself){tail}"
            ) from None
        if failure.errno in (errno.ENOENT, errno.ENOTDIR):
            dangling = " (a symlink to a missing path)" if path.is_symlink() else ""
            raise error(f"{what} not found: {path}{dangling}{tail}") from None
        raise error(f"cannot read {what} {path}: {failure.strerror or failure}{tail}") from None
    is_folder = stat.S_ISDIR(info.st_mode)
    if not is_folder and not stat.S_ISREG(info.st_mode):
        raise error(
            f"{what} {path} is not a regular file or folder (a pipe, socket or device?), which "
            f"could block reading forever{tail}"
        )
    if kind == "file" and is_folder:
        raise error(f"{what} {path} is a folder, not a file{tail}")
    if kind == "folder" and not is_folder:
        raise error(f"{what} {path} is a file, not a folder{tail}")
    if not os.access(path, os.R_OK | (os.X_OK if is_folder else 0)):
        raise error(f"cannot read {what} {path}: permission denied{tail}")
    return path


def check_folder_for_reading(
    path: str | Path, what: str, *, error: type[MegalithError] = DataError
) -> Path:
    """`path` when it is a readable folder whose entries are all readable files or folders:
    for a folder another library reads (transformers, a model directory), where one pipe or
    loop among its files would block or break that library's read.

    Raises:
        error: naming the folder or the first entry that is not (see `check_readable`).
    """
    folder = check_readable(path, what, kind="folder", error=error)
    for entry in sorted(folder.iterdir()):
        check_readable(entry, f"{what} file", error=error)
    return folder


def check_confined(run: str | Path) -> None:
    """Refuse a run directory holding a symlink that leads out of it (or a symlink loop, or a
    pipe, socket or device), at any depth; links that stay inside are fine. Nothing is read
    through a link, and walking never follows one, so a loop cannot make it run forever.

    Raises:
        RunError: naming the first such entry and what to do.
    """
    root = resolved(run)
    for entry in _entries(Path(run)):
        where = Path(entry.path)
        if entry.is_symlink():
            target = resolved(where)
            if _is_loop(where):
                raise RunError(
                    f"{where} is a symlink loop; a run directory must hold its own files: "
                    "remove the link"
                )
            if not target.is_relative_to(root):
                raise RunError(
                    f"{where} is a symlink to {os.readlink(where)}, outside the run directory "
                    f"{run}; Megalith never writes or deletes through such a link: replace it "
                    "by a copy of what it points at, or remove it"
                )
        elif not entry.is_dir(follow_symlinks=False) and not entry.is_file(follow_symlinks=False):
            raise RunError(
                f"{where} in the run directory is not a regular file or folder (a pipe, socket "
                "or device?); remove it"
            )


def check_inside(run: str | Path, path: str | Path) -> None:
    """Refuse to write `path` when, with symlinks followed, it lies outside the run directory.

    Raises:
        RunError: naming `path` and the run directory.
    """
    if not resolved(path).is_relative_to(resolved(run)):
        raise RunError(
            f"{path} leads out of the run directory {run} (through a symlink); Megalith never "
            "writes or deletes through such a link: replace it by a copy, or remove it"
        )


def remove_path(path: Path) -> None:
    """Delete a file, a folder (recursively) or a symlink, never what a symlink points at;
    nothing when `path` does not exist."""
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        path.unlink(missing_ok=True)
    elif path.is_dir():
        shutil.rmtree(path)


def _entries(folder: Path) -> Iterator[os.DirEntry[str]]:
    """Every entry under `folder`, depth first, without following a symlink."""
    pending = [folder]
    while pending:
        current = pending.pop()
        try:
            with os.scandir(current) as found:
                for entry in found:
                    yield entry
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(Path(entry.path))
        except OSError as error:
            raise RunError(f"cannot list {current}: {error.strerror or error}") from None


def _is_loop(path: Path) -> bool:
    try:
        os.stat(path)
    except OSError as error:
        return error.errno == errno.ELOOP
    return False


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes (hex), read 1 MiB at a time."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
