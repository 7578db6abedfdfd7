"""Heartbeats: which process stalled when a collective waited too long.

A background thread of every training process records, once a second, the process's last
optimizer step and the wall-clock time in the process group's key-value store (torchrun's
TCPStore). A process that is waiting in a collective keeps beating; one that froze or died
(a hung device, a stopped or killed process, a lost machine) falls silent. When a collective
waits longer than `train.collective_timeout` seconds, the run ends with a RunError listing every
rank's last heartbeat, the silent ones marked as stalled.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import torch.distributed as dist

from megalith.errors import RunError
from megalith.training.callbacks import Callback

FAILURE_SIGNS = ("Timed out", "timed out", "Connection closed by peer", "Connection reset by peer")
"""What Gloo's and NCCL's errors say when another process stopped answering."""


class Heartbeat(Callback):
    """Records this rank's progress in `store` (a torch.distributed.Store) every `every` seconds."""

    def __init__(self, store: dist.Store, rank: int, world_size: int, every: float = 1.0) -> None:
        self.store, self.rank, self.world_size, self.every = store, rank, world_size, every
        self.step = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def on_train_start(self, total_steps: int, epochs: int, start_epoch: int) -> None:
        self._thread = threading.Thread(target=self._beat, name="megalith-heartbeat", daemon=True)
        self._thread.start()

    def on_step_end(self, step: int, epoch: int, samples: int, loss: float | None) -> None:
        self.step = step  # read by the beating thread: no store traffic on the training path

    def on_train_end(self, stopped_early: bool) -> None:
        self._stop.set()

    def _beat(self) -> None:
        while not self._stop.is_set():
            record = {"step": self.step, "time": time.time()}
            try:
                self.store.set(f"megalith/heartbeat/{self.rank}", json.dumps(record))
            except RuntimeError:  # the store went away with the group: nothing left to tell
                return
            self._stop.wait(self.every)

    def last_beats(self) -> dict[int, dict[str, Any]]:
        """Every rank's last heartbeat that the store holds: {rank: {'step', 'time'}}."""
        beats = {}
        for rank in range(self.world_size):
            key = f"megalith/heartbeat/{rank}"
            if self.store.check([key]):
                beats[rank] = json.loads(self.store.get(key))
        return beats

    def describe(self) -> str:
        """One part per rank: its last step and how long ago it beat; silent ones are stalled."""
        now, beats = time.time(), self.last_beats()
        parts = []
        for rank in range(self.world_size):
            beat = beats.get(rank)
            if beat is None:
                parts.append(f"rank {rank}: no heartbeat (stalled before training started)")
                continue
            ago = now - beat["time"]
            stalled = " (stalled)" if ago > 5 * self.every + 2 else ""
            parts.append(f"rank {rank}: step {beat['step']}, last heard {ago:.0f} s ago{stalled}")
        return "; ".join(parts)


def collective_failure(
    error: RuntimeError, heartbeat: Heartbeat | None, timeout: float
) -> RunError | None:
    """A RunError naming the stalled rank for an error of a collective whose peer stopped
    answering (a timeout or a closed connection); None for any other error."""
    text = str(error)
    if heartbeat is None or not any(sign in text for sign in FAILURE_SIGNS):
        return None
    try:
        beats = heartbeat.describe()
    except (RuntimeError, ValueError) as store_error:  # the store went with the group
        beats = f"the heartbeats cannot be read ({store_error})"
    return RunError(
        f"rank {heartbeat.rank}: another process stopped answering in a collective "
        f"(train.collective_timeout is {timeout:g} s): {text.splitlines()[0][:200]}. "
        f"Last heartbeats: {beats}. The last complete checkpoint is kept; resume with "
        "`megalith train --resume RUN` (or let --max-restarts restart the processes)"
    )
