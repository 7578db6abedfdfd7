"""The `tune:` block a config may hold: the search space and how to search it.

Kept apart from the tuner itself (which needs Optuna) so that megalith.config can accept the
block, and `megalith train` ignore it, without importing the tuner.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from megalith.configbase import ConfigModel


class TuneConfig(ConfigModel):
    """What `megalith tune` searches and how; each key has a command-line option that wins."""

    space: dict[str, dict[str, Any]] = {}
    """Dotted config key -> distribution, e.g. `train.optimizer.lr: {loguniform: [1e-4, 1e-2]}`."""
    metric: str | None = None
    """The validation metric to optimise (default: train.early_stop.metric, else val/loss)."""
    trials: int | None = Field(None, gt=0)
    """How many trials the study should hold (completed, pruned and failed ones count)."""
    sampler: Literal["tpe", "random", "grid"] = "tpe"
    """Optuna's sampler: TPE (default), random, or grid (choice and stepped int keys only)."""
    pruner: Literal["hyperband", "median", "none"] = "hyperband"
    """Optuna's pruner, fed the watched metric after every epoch."""
