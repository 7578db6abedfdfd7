"""One trial: sample the space, build and validate the config, train it through the ordinary
path (`megalith.train`) into STUDY_DIR/trials/NNN, report the watched metric every epoch to
the pruner, and return the final validation score."""

from __future__ import annotations

import io
import json
import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from megalith.errors import ConfigError, MegalithError
from megalith.training.callbacks import Callback
from megalith.training.safety import TrainingInterrupted
from megalith.tuning.space import Dimension, overrides_for

if TYPE_CHECKING:
    import optuna

    from megalith.pipeline import ConfigSource

FACTS = "megalith"
"""The trial's user attribute holding what Megalith records (trial_facts)."""
INTERRUPTED = "interrupted"
"""Set on a trial failed because a killed tuner left it running."""
TrainFunction = Callable[..., Any]
"""megalith.train's signature: (config, *, output_dir, overrides, overwrite, console, callbacks)."""


class TrialFailed(Exception):
    """A trial's config or training was refused (a MegalithError, the reason in its facts):
    the trial fails and the study goes on. A signal stopping training is not one of them."""


class PruningReport(Callback):
    """Reports the watched metric after each epoch; raises optuna.TrialPruned when the pruner
    says the trial is hopeless. The run keeps what it wrote so far (config.yaml,
    metrics.jsonl, the checkpoints of earlier epochs: `megalith train --resume` continues it)."""

    def __init__(self, trial: optuna.Trial, metric: str) -> None:
        self.trial = trial
        self.metric = metric
        self.epochs = 0
        self.last_epoch = 0

    def on_train_start(self, total_steps: int, epochs: int, start_epoch: int) -> None:
        self.last_epoch = epochs

    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        import optuna

        if self.metric not in metrics:
            known = ", ".join(k for k in metrics if k.startswith("val/")) or "none: no val split"
            raise ConfigError(
                f"--metric {self.metric}: this model's validation metrics are {known}"
            )
        self.epochs = epoch + 1
        self.trial.report(metrics[self.metric], step=epoch + 1)
        # the last epoch is not judged: stopping there would save nothing and lose the run's end
        if self.epochs < self.last_epoch and self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {self.epochs}")


@dataclass
class Objective:
    """Optuna's objective for a study over `config` (a path, dict or Config)."""

    config: ConfigSource
    dimensions: list[Dimension]
    metric: str
    trials_dir: Path
    overrides: Sequence[str] = ()
    train: TrainFunction | None = None
    """Stands in for megalith.train in the overhead benchmark; None: the real one."""
    errors: list[str] = field(default_factory=list)
    """The reasons of the trials this process saw fail."""

    def __call__(self, trial: optuna.Trial) -> float:
        import optuna

        from megalith.config import load_config

        started = time.perf_counter()
        values = {d.key: d.suggest(trial) for d in self.dimensions}
        run_dir = self.trials_dir / f"{trial.number:03d}"
        # one write of what Megalith records, at the end: each write to the journal is an fsync
        facts: dict[str, Any] = {"run_dir": str(run_dir), "worker": _worker()}
        overrides = [*self.overrides, "tune=null", *overrides_for(values)]
        report = PruningReport(trial, self.metric)
        try:
            load_config(self.config, overrides)  # an invalid combination fails here, untrained
            train = self.train or _megalith_train()
            train(
                self.config,
                output_dir=run_dir,
                overrides=overrides,
                overwrite=True,
                console=_quiet_console(),
                callbacks=[report],
            )
            return read_score(run_dir, self.metric)
        except optuna.TrialPruned:
            raise
        except (TrainingInterrupted, KeyboardInterrupt) as stop:  # Ctrl-C, SIGTERM: study stops
            facts["error"] = "interrupted by a signal; its parameters run again"
            trial.set_user_attr(INTERRUPTED, True)
            trial.study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
            if isinstance(stop, TrainingInterrupted):  # say how to go on with the study
                raise TrainingInterrupted(
                    f"the study stopped during trial {trial.number}: rerun the same `megalith "
                    "tune` command to continue it (that trial runs again first)",
                    stop.exit_code - 128,
                ) from stop
            raise
        except MegalithError as error:
            facts["error"] = str(error)
            self.errors.append(str(error))
            raise TrialFailed(str(error)) from error
        finally:
            facts.update(epochs=report.epochs, seconds=round(time.perf_counter() - started, 3))
            trial.set_user_attr(FACTS, facts)


def trial_facts(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """What Megalith recorded of a trial: run_dir, worker, epochs, seconds, error (if any)."""
    facts = dict(trial.user_attrs.get(FACTS, {}))
    if trial.user_attrs.get(INTERRUPTED):
        facts["error"] = "interrupted (the tuner was stopped); its parameters run again"
    facts.setdefault("epochs", len(trial.intermediate_values))
    return facts


def _worker() -> str:
    """host:pid of this process, telling apart workers on several machines."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _megalith_train() -> TrainFunction:
    from megalith.pipeline import train  # the ordinary path; only a trial needs it

    return train


def _quiet_console() -> Any:
    """Trials print nothing of their own: the tuner prints one line per trial."""
    from rich.console import Console

    return Console(file=io.StringIO(), quiet=True)


def read_score(run_dir: Path, metric: str) -> float:
    """The final validation score `metric` ('val/accuracy') from RUN/eval.json.

    Raises:
        ConfigError: the metric is not among the run's validation scores.
    """
    scores = json.loads((run_dir / "eval.json").read_text(encoding="utf-8"))
    name = metric.split("/", 1)[1]
    if name not in scores.get("val", {}):
        known = ", ".join(f"val/{k}" for k in scores.get("val", {})) or "none: no val split"
        raise ConfigError(f"--metric {metric}: this model's validation scores are {known}")
    return float(scores["val"][name])
