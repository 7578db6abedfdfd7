"""Early stopping on any validation metric, remembering the best epoch's weights."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from megalith.configbase import ConfigModel
from megalith.evaluate.metrics import higher_is_better


class EarlyStopConfig(ConfigModel):
    """Stop when a validation metric has not improved for `patience` epochs."""

    metric: str = "val/loss"
    """The metric to watch, e.g. val/loss, val/accuracy, val/macro_f1, val/r2."""
    patience: int = Field(5, gt=0)
    """Epochs without improvement before stopping."""
    mode: Literal["auto", "min", "max"] = "auto"
    """Whether lower or higher is better; auto knows the built-in metrics."""
    min_delta: float = Field(0.0, ge=0)
    """Smallest change that counts as an improvement."""
    restore_best: bool = True
    """At the end, keep the weights of the best epoch rather than the last."""


class EarlyStopping:
    """Tracks the best value of one metric; its state is plain JSON for checkpoints."""

    def __init__(self, config: EarlyStopConfig) -> None:
        self.config = config
        self.maximize = (
            config.mode == "max" if config.mode != "auto" else higher_is_better(config.metric)
        )
        self.best: float | None = None
        self.best_epoch = -1
        self.bad_epochs = 0

    def update(self, metrics: dict[str, float], epoch: int) -> bool:
        """Record an epoch's metrics; True when this epoch is the best so far."""
        value = metrics[self.config.metric]
        delta = self.config.min_delta
        improved = self.best is None or (
            value > self.best + delta if self.maximize else value < self.best - delta
        )
        if improved:
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
        else:
            self.bad_epochs += 1
        return improved

    @property
    def should_stop(self) -> bool:
        return self.bad_epochs >= self.config.patience

    def state(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs}

    def load_state(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch, self.bad_epochs = (
            state["best"],
            state["best_epoch"],
            state["bad_epochs"],
        )
