"""A checkpoint folder written atomically: files under a temporary name, `state.json` last
(with the SHA-256 of every file), then one rename; older folders pruned; flushed to the disk.

`checkpoints/step-NNNNNNNNN/` appears only complete, so a process killed at any moment leaves
the previous checkpoint the newest. megalith.training.checkpoint decides what goes in one;
the writer process (megalith.training.checkpoint_writer) and the sharded checkpoints of FSDP
(megalith.training.sharded_checkpoint) write theirs through the same steps.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from megalith.errors import RunError
from megalith.paths import file_sha256, remove_path

KEEP_LAST = 2
STATE_FILE = "state.json"


def write_checkpoint(
    root: Path, step: int, files: dict[str, dict[str, torch.Tensor]], manifest: dict[str, Any]
) -> Path:
    """`files` (file name -> tensors) as safetensors under a temporary name, state.json (with
    their hashes) last, then the rename; older checkpoints pruned to KEEP_LAST.

    Raises:
        RunError: the folder cannot be written; nothing half-written stays.
    """
    tmp, final = begin_checkpoint(root, step, str(os.getpid()))
    try:
        for name, tensors in files.items():
            save_file(tensors, tmp / name)
    except OSError as error:
        shutil.rmtree(tmp, ignore_errors=True)
        raise unwritable(final, error) from error
    return seal_checkpoint(tmp, final, manifest)


def begin_checkpoint(root: Path, step: int, name: str) -> tuple[Path, Path]:
    """A fresh temporary folder `root/.tmp-step-NNNNNNNNN-NAME` (left-over ones removed) and
    the final folder it becomes; one writer per run.

    Raises:
        RunError: the folder cannot be made.
    """
    final = root / f"step-{step:09d}"
    tmp = root / f".tmp-step-{step:09d}-{name}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        for stale in root.glob(".tmp-*"):  # left by a process killed mid-write
            remove_path(stale)
        tmp.mkdir()
    except OSError as error:
        raise unwritable(final, error) from error
    return tmp, final


def seal_checkpoint(
    tmp: Path, final: Path, manifest: dict[str, Any], known: dict[str, str] | None = None
) -> Path:
    """state.json last (with the SHA-256 of every file under `tmp`), then `tmp` renamed to
    `final`; older checkpoints pruned to KEEP_LAST.

    Args:
        known: digests already taken while the files were written (path under `tmp` -> hex);
            the other files are hashed here.
    Raises:
        RunError: the folder cannot be written; nothing half-written stays.
    """
    try:
        names = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.is_file())
        known = known or {}
        files = {name: known.get(name) or file_sha256(tmp / name) for name in names}
        (tmp / STATE_FILE).write_text(json.dumps({**manifest, "files": files}))
        remove_path(final)
        os.replace(tmp, final)
    except OSError as error:
        shutil.rmtree(tmp, ignore_errors=True)
        raise unwritable(final, error) from error
    for old in checkpoint_dirs(final.parent)[:-KEEP_LAST]:  # the one before `final` is durable
        shutil.rmtree(old, ignore_errors=True)
    return final


def unwritable(final: Path, error: OSError) -> RunError:
    return RunError(
        f"cannot write checkpoint {final}: {error.strerror or error}; free some disk space "
        f"(or make {final.parent} writable), then continue with `megalith train --resume "
        f"{final.parent.parent}` from the last complete checkpoint"
    )


def make_durable(folder: Path) -> None:
    """fsync a renamed checkpoint's files, its folder and the folder holding it; a folder
    removed meanwhile (a run overwritten, a damaged file deleted) has nothing left to flush."""
    try:
        for path in sorted(folder.rglob("*")):  # sharded checkpoints have a folder of shards
            (_fsync_dir if path.is_dir() else _fsync_file)(path)
        _fsync_dir(folder)
        _fsync_dir(folder.parent)
    except FileNotFoundError:
        return


def checkpoint_dirs(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted(  # a symlink is never one: pruning deletes these folders
        p
        for p in root.iterdir()
        if p.name.startswith("step-") and p.is_dir() and not p.is_symlink()
    )


def _fsync_file(path: Path) -> None:
    with path.open("rb") as file:
        os.fsync(file.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
