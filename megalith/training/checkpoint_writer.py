"""Background checkpoints written by a process of their own, from a copy in shared memory.

`train.checkpoint_async`: the training process copies the checkpoint's tensors into a
shared-memory buffer (made once, reused while their names and shapes stay the same: a copy
into pages already mapped, no allocation) and goes on training; a writer process serialises
them to safetensors, hashes, renames and flushes the folder (megalith.training.checkpoint_files).

Why a process rather than a thread: serialising and hashing hold the interpreter's lock part of
the time, and on Linux the scheduler shares CPU between sessions (autogroups), so a thread's
work, or a child's in the same session, is taken from the training process's own share of a
busy machine. The writer runs in a session of its own and dies with its parent (a training
process killed mid-write leaves the folder under its temporary name: the previous checkpoint
stays the newest complete one). It runs at normal priority: at the lowest (nice 19, measured)
it starved on a busy machine and the next save waited for it. Messages are JSON lines over its
stdin/stdout and the tensors are raw bytes in the buffer: nothing is pickled.

    python -m megalith.training.checkpoint_writer   # started by `CheckpointWriter`, not by hand
"""

from __future__ import annotations

import json
import mmap
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from megalith.errors import RunError

_ALIGN = 64


class CheckpointWriter:
    """The parent's side: stage tensors, ask for a write, wait for it (one write at a time)."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[str] | None = None
        self._fd = -1
        self._buffer: mmap.mmap | None = None
        self._layout: list[dict[str, Any]] = []
        self._views: dict[tuple[str, str], torch.Tensor] = {}
        self._pending = False

    def write(
        self,
        root: Path,
        step: int,
        files: dict[str, dict[str, torch.Tensor]],
        manifest: dict[str, Any],
    ) -> None:
        """Copy `files` (file name -> tensors on any device) into shared memory and ask the
        writer for `root/step-NNNNNNNNN`; returns once the copy is taken."""
        self.wait()
        layout = _layout_of(files)
        if layout != self._layout or self._process is None or self._process.poll() is not None:
            self._restart(layout)
        for (file, name), view in self._views.items():
            view.copy_(files[file][name].detach())
        assert self._process is not None and self._process.stdin is not None
        request = {"root": str(root), "step": step, "layout": layout, "manifest": manifest}
        self._process.stdin.write(json.dumps(request) + "\n")
        self._process.stdin.flush()
        self._pending = True

    def wait(self) -> Path | None:
        """Block until the last requested write is renamed and flushed; None when none was.

        Raises:
            RunError: the writer failed (its message) or ended (killed, out of memory).
        """
        if not self._pending:
            return None
        self._pending = False
        assert self._process is not None and self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            code = self._process.wait()
            raise RunError(
                f"the checkpoint writer process ended (exit code {code}) before finishing a "
                "checkpoint; the previous one is the newest complete one"
            )
        reply = json.loads(line)
        if "error" in reply:
            raise RunError(reply["error"])
        return Path(reply["done"])

    def _restart(self, layout: list[dict[str, Any]]) -> None:
        """A buffer for `layout` (an anonymous memory file) and a writer process sharing it."""
        self.stop()
        size = max([1, *(item["end"] for item in layout)])
        self._fd = os.memfd_create("megalith-checkpoint")
        os.ftruncate(self._fd, size)
        self._buffer = mmap.mmap(self._fd, size)
        self._layout, self._views = layout, _views(self._buffer, layout)
        self._process = subprocess.Popen(
            [sys.executable, "-m", "megalith.training.checkpoint_writer", str(self._fd)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            pass_fds=(self._fd,),
            start_new_session=True,  # its own CPU share (autogroup), not the trainer's
        )

    def close(self) -> None:
        """End the writer (after its last write) and free the buffer.

        Raises:
            RunError: the last write failed.
        """
        try:
            self.wait()
        finally:
            self.stop()

    def stop(self) -> None:
        """Let the writer finish the write it is doing, then end it (at exit: no error raised,
        a failed write leaves its folder under the temporary name)."""
        if self._process is not None:
            assert self._process.stdin is not None and self._process.stdout is not None
            self._process.stdin.close()
            self._process.wait()
            self._process.stdout.close()
            self._process, self._pending = None, False
        self._views, self._layout, self._buffer = {}, [], None  # the map closes when unused
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _layout_of(files: dict[str, dict[str, torch.Tensor]]) -> list[dict[str, Any]]:
    """Where each tensor sits in the buffer: file, name, dtype, shape, byte offsets."""
    layout, offset = [], 0
    for file, tensors in files.items():
        for name, tensor in tensors.items():
            size = tensor.numel() * tensor.element_size()
            dtype = str(tensor.dtype).removeprefix("torch.")
            item = {"file": file, "name": name, "dtype": dtype, "shape": list(tensor.shape)}
            layout.append({**item, "start": offset, "end": offset + size})
            offset += -(-size // _ALIGN) * _ALIGN
    return layout


def _views(buffer: mmap.mmap, layout: list[dict[str, Any]]) -> dict[tuple[str, str], torch.Tensor]:
    """Tensors that are windows on the buffer, one per layout item."""
    whole = torch.frombuffer(buffer, dtype=torch.uint8)
    views = {}
    for item in layout:
        raw = whole[item["start"] : item["end"]]
        dtype = getattr(torch, item["dtype"])
        views[item["file"], item["name"]] = raw.view(dtype).reshape(item["shape"])
    return views


def _serve(fd: int) -> None:
    """The writer's loop: one JSON request a line on stdin, one JSON reply a line on stdout;
    the tensors are read from the memory file `fd` shared with the parent."""
    from megalith.training.checkpoint_files import make_durable, write_checkpoint

    _die_with_parent()
    buffer = mmap.mmap(fd, os.fstat(fd).st_size)
    for line in sys.stdin:
        request = json.loads(line)
        files: dict[str, dict[str, torch.Tensor]] = {}
        for (file, name), view in _views(buffer, request["layout"]).items():
            files.setdefault(file, {})[name] = view
        try:
            root = Path(request["root"])
            done = write_checkpoint(root, request["step"], files, request["manifest"])
            make_durable(done)
            reply = {"done": str(done)}
        except (RunError, OSError) as error:
            reply = {"error": str(error)}
        print(json.dumps(reply), flush=True)


def _die_with_parent() -> None:
    """Linux: the kernel kills this process when its parent dies (prctl PR_SET_PDEATHSIG)."""
    if sys.platform != "linux":
        return
    import ctypes
    import signal

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
