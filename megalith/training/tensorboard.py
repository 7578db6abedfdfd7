"""Optional logging to TensorBoard (`train.log: [tensorboard]`), for people who already use it.

Scalars go to RUN/tensorboard/: the train loss every `log_every` steps and every per-epoch metric,
both against the optimizer step. Needs the `tensorboard` package (`pip install
"megalith[tensorboard]"`); asking for it without the package is a ConfigError before training.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from megalith.errors import ConfigError
from megalith.training.callbacks import Callback

_NOT_SCALARS = frozenset({"epoch", "step"})


class TensorBoardLog(Callback):
    """Scalars through torch.utils.tensorboard.SummaryWriter, opened when training starts."""

    def __init__(self, folder: Path) -> None:
        if importlib.util.find_spec("tensorboard") is None:
            raise ConfigError(
                "train.log: 'tensorboard' needs the tensorboard package; install it with "
                '`pip install "megalith[tensorboard]"` or remove it from train.log'
            )
        self.folder = folder
        self.writer: Any = None
        self.resumed_at: int | None = None
        self.last_step = 0

    def load_state_dict(self, state: dict[str, Any]) -> None:
        # A resumed run rewrites what was logged after its checkpoint: drop those events.
        self.resumed_at = int(state.get("step", 0)) + 1

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.last_step}

    def on_train_start(self, total_steps: int, epochs: int, start_epoch: int) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(self.folder), purge_step=self.resumed_at)

    def on_step_end(self, step: int, epoch: int, samples: int, loss: float | None) -> None:
        self.last_step = step
        if loss is not None and self.writer is not None:
            self.writer.add_scalar("train/loss_step", loss, step)

    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        if self.writer is None:
            return
        step = int(metrics.get("step", self.last_step))
        for name, value in metrics.items():
            if name not in _NOT_SCALARS:
                self.writer.add_scalar(name, value, step)
        self.writer.flush()

    def on_train_end(self, stopped_early: bool) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def build_loggers(names: Sequence[str], run_path: Path) -> list[Callback]:
    """The callbacks for `train.log`; raises ConfigError when one cannot work here."""
    loggers: list[Callback] = []
    for name in dict.fromkeys(names):
        if name == "tensorboard":
            loggers.append(TensorBoardLog(run_path / "tensorboard"))
    return loggers
