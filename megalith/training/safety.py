"""What keeps a run safe while it trains: signals, non-finite losses, and checkpoints on a timer.

- SIGTERM / Ctrl-C finish the current step, write a checkpoint, say how to resume, and exit.
- A NaN or Inf loss (or gradient norm) stops the run at that step with a hint, keeping the last
  good checkpoint; `train.on_nan: skip` skips such steps instead, up to `max_skipped_steps`.
- `train.checkpoint_every` adds checkpoints every N steps or every N minutes.
"""

from __future__ import annotations

import re
import signal
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import torch

from megalith.errors import MegalithError


class TrainingInterrupted(MegalithError):
    """A signal stopped training after a checkpoint was written; exit code 128 + signal number."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.exit_code = 128 + signum


class NonFiniteLoss(MegalithError):
    """The loss or the gradients became NaN or Inf."""


class StopSignals:
    """Turns the first SIGTERM / SIGINT into a request to stop after the current step.

    A second Ctrl-C interrupts at once. Outside the main thread signals cannot be caught,
    so the handlers are only installed there. With several processes a signal may reach only
    some of them: `agree` makes every process stop at the same step (one checkpoint written
    by all, as FSDP's sharded checkpoints need), instead of one entering it alone and hanging.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.received: int | None = None
        """The signal this process received (set by its handler at any moment)."""
        self.agreed: int | None = None
        """The signal some process received, as every process agreed at the last `agree`."""
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received = signum
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C is immediate

    def agree(self, largest: Callable[[int], int]) -> int | None:
        """Whether any process received a signal, agreed by all (every process calls it at
        the same step): `largest` is the largest of every process's value (the identity with
        one process). Returns the signal's number, or None."""
        self.agreed = largest(self.received or 0) or None
        return self.agreed

    def raise_if_received(
        self, step: int, run_dir: Path, largest: Callable[[int], int] | None = None
    ) -> None:
        """After the checkpoint of a signalled step: stop, saying how to resume. Only a signal
        agreed on stops (with `largest`, agreed here first), so that every process stops."""
        if largest is not None:
            self.agree(largest)
        if self.agreed is None:
            return
        name = signal.Signals(self.agreed).name
        raise TrainingInterrupted(
            f"stopped by {name} after step {step}; checkpoint written. "
            f"Resume with: megalith train --resume {run_dir}",
            self.agreed,
        )


class CheckpointTimer:
    """Says when a mid-epoch checkpoint is due: every N steps ('500') or minutes ('10m')."""

    def __init__(self, every: int | str | None) -> None:
        self.steps, self.seconds = parse_checkpoint_every(every)
        self.last = time.monotonic()

    def due(self, step: int) -> bool:
        if self.steps is not None and step % self.steps == 0:
            return True
        if self.seconds is not None and time.monotonic() - self.last >= self.seconds:
            self.last = time.monotonic()
            return True
        return False


_MINUTES = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|min|mins|minutes)\s*$")


def parse_checkpoint_every(every: int | str | None) -> tuple[int | None, float | None]:
    """(steps, seconds) from 500, '500', '10m' or None; ValueError for anything else."""
    if every is None:
        return None, None
    if isinstance(every, int) or str(every).strip().isdigit():
        steps = int(every)
        if steps <= 0:
            raise ValueError("must be a positive number of steps or minutes ('10m')")
        return steps, None
    match = _MINUTES.match(str(every))
    if match is None or float(match.group(1)) <= 0:
        raise ValueError(f"expected a number of steps (500) or minutes ('10m'), got '{every}'")
    return None, float(match.group(1)) * 60


class NanGuard:
    """Checks losses and gradient norms for NaN / Inf.

    Reading a value is a device sync, so on a GPU (unless skipping, which needs every answer)
    the loss is checked only at logging steps; on the CPU a check costs nothing and runs every step.
    """

    def __init__(
        self,
        on_nan: str,
        max_skipped: int,
        log_every: int,
        device: torch.device,
        inputs: Sequence[str],
    ) -> None:
        self.skip = on_nan == "skip"
        self.max_skipped = max_skipped
        self.every = 1 if device.type == "cpu" or self.skip else log_every
        self.inputs = list(inputs)
        self.skipped = 0

    def loss_ok(self, loss: torch.Tensor, step: int, epoch: int, checkpoints: Path) -> bool:
        if step % self.every or bool(torch.isfinite(loss.detach())):
            return True
        return self._fault("loss", float(loss.detach()), step, epoch, checkpoints)

    def grads_ok(self, norm: torch.Tensor | None, step: int, epoch: int, checkpoints: Path) -> bool:
        if norm is None or step % self.every or bool(torch.isfinite(norm)):
            return True
        return self._fault("gradient norm", float(norm), step, epoch, checkpoints)

    def _fault(self, what: str, value: float, step: int, epoch: int, checkpoints: Path) -> bool:
        if self.skip and self.skipped < self.max_skipped:
            self.skipped += 1
            return False
        columns = ", ".join(self.inputs[:8]) + (", ..." if len(self.inputs) > 8 else "")
        reason = (
            f"more than {self.max_skipped} steps skipped (train.max_skipped_steps)"
            if self.skip
            else "train.on_nan: stop"
        )
        raise NonFiniteLoss(
            f"the {what} is {value} at step {step} (epoch {epoch + 1}); stopped ({reason}). "
            f"The last good checkpoint is kept in {checkpoints}. Try a lower "
            "train.optimizer.lr, train.clip_grad_norm: 1.0, or check the input columns for "
            f"extreme values ({columns}); train.on_nan: skip skips such steps."
        )
