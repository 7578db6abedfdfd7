"""A small, fixed set of hooks the loop calls, with no-op defaults; progress and logs use them."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import IO, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from megalith.errors import cannot_write


class Callback:
    """Override the hooks you need; the loop calls them in this order."""

    def on_train_start(self, total_steps: int, epochs: int, start_epoch: int) -> None:
        """Before the first step (of a fresh or resumed run)."""

    def on_step_end(self, step: int, epoch: int, samples: int, loss: float | None) -> None:
        """After each optimizer step; `loss` is read (a sync) every `log_every` steps only."""

    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        """After validation and the checkpoint of each epoch."""

    def on_train_end(self, stopped_early: bool) -> None:
        """After the last epoch."""

    def state_dict(self) -> dict[str, Any]:
        """JSON state saved in every checkpoint, handed back by load_state_dict on resume."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Called before on_train_start when a run resumes."""


class MetricsLog(Callback):
    """Appends one JSON object per logged step and per epoch to metrics.jsonl."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file: IO[str] | None = None
        self.keep_bytes = 0

    def on_train_start(self, total_steps: int, epochs: int, start_epoch: int) -> None:
        # A fresh run starts an empty file; a resumed one drops what was logged after its checkpoint
        # so the log reads as if the run had never stopped.
        try:
            self.file = self.path.open("a")
            self.file.truncate(self.keep_bytes)
        except OSError as error:
            raise cannot_write(self.path, error) from error

    def state_dict(self) -> dict[str, Any]:
        return {"bytes": self.file.tell() if self.file is not None else self.keep_bytes}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.keep_bytes = int(state.get("bytes", 0))

    def on_step_end(self, step: int, epoch: int, samples: int, loss: float | None) -> None:
        if loss is not None:
            self._write({"step": step, "epoch": epoch + 1, "train/loss": loss})

    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        self._write(metrics)

    def on_train_end(self, stopped_early: bool) -> None:
        if self.file is not None:
            self.file.close()

    def _write(self, record: dict[str, Any]) -> None:
        assert self.file is not None
        clean = {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in record.items()
        }
        try:
            self.file.write(json.dumps(clean) + "\n")
            self.file.flush()
        except OSError as error:
            raise cannot_write(self.path, error) from error


class ProgressBar(Callback):
    """A live bar (epoch, step, loss, watched metric, samples/s, ETA) and one line per epoch."""

    def __init__(self, console: Console, watch: str | None) -> None:
        self.console = console
        self.watch = watch
        self.progress = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("{task.fields[watch]}"),
            TextColumn("{task.fields[speed]} samples/s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            disable=not console.is_terminal,
        )
        self.task = self.progress.add_task(
            "train", total=None, epoch="", loss="-", watch="", speed="-"
        )
        self.epochs = 0
        self.samples = 0
        self.started = 0.0

    def on_train_start(self, total_steps: int, epochs: int, start_epoch: int) -> None:
        self.epochs = epochs
        self.started = time.perf_counter()
        self.progress.update(self.task, total=total_steps, epoch=f"{start_epoch + 1}/{epochs}")
        self.progress.start()

    def on_step_end(self, step: int, epoch: int, samples: int, loss: float | None) -> None:
        self.samples += samples
        fields: dict[str, Any] = {"epoch": f"{epoch + 1}/{self.epochs}"}
        if loss is not None:
            fields["loss"] = f"{loss:.4f}"
            fields["speed"] = f"{self.samples / max(time.perf_counter() - self.started, 1e-9):,.0f}"
        self.progress.update(self.task, completed=step, **fields)

    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        shown = {k: v for k, v in metrics.items() if "/" in k}
        if self.watch in metrics:
            self.progress.update(self.task, watch=f"{self.watch} {metrics[self.watch]:.4f}")
        line = "  ".join(f"{k} {v:.4f}" for k, v in shown.items())
        self.console.print(
            f"epoch {epoch + 1}/{self.epochs}  {line}  ({metrics['time']:.1f}s)", soft_wrap=True
        )

    def on_train_end(self, stopped_early: bool) -> None:
        self.progress.stop()
        if stopped_early:
            self.console.print(f"stopped early: {self.watch} has not improved")


class Throughput(Callback):
    """Counts the samples this process trained on and the loop's wall time, for eval.json."""

    def __init__(self) -> None:
        self.samples = 0
        self.started = 0.0
        self.seconds = 0.0

    def on_train_start(self, total_steps: int, epochs: int, start_epoch: int) -> None:
        self.started = time.perf_counter()

    def on_step_end(self, step: int, epoch: int, samples: int, loss: float | None) -> None:
        self.samples += samples

    def on_train_end(self, stopped_early: bool) -> None:
        self.seconds = time.perf_counter() - self.started

    @property
    def per_second(self) -> float | None:
        """Samples per second over the whole loop (validation included); None before it ran."""
        return self.samples / self.seconds if self.seconds > 0 and self.samples else None
