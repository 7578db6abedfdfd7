"""A worker: one process running trials of a shared study until its share is done. With
--workers K the tuner starts K of them (spawned, each with its share of the CPU threads); on
several machines each `megalith tune --storage URL` is one more."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from megalith.tuning.objective import (
    INTERRUPTED,
    Objective,
    TrainFunction,
    TrialFailed,
    trial_facts,
)
from megalith.tuning.space import Dimension
from megalith.tuning.storage import open_storage

if TYPE_CHECKING:
    import optuna

FINISHED_STATES = ("COMPLETE", "PRUNED", "FAIL")
MEDIAN_STARTUP_TRIALS = 4
"""The median pruner judges no trial before this many have finished (Optuna's default is 5)."""


@dataclass(frozen=True)
class StudyPlan:
    """Everything a worker process needs to join the study (picklable)."""

    config: str | dict[str, Any]
    """A config path or a config mapping (relative paths then resolve in the working folder)."""
    dimensions: list[Dimension]
    overrides: tuple[str, ...]
    study_dir: Path
    study_name: str
    storage: str | None
    metric: str
    direction: Literal["minimize", "maximize"]
    sampler: str
    pruner: str
    max_epochs: int
    seed: int
    trials: int | None
    """The study's total; a worker stops once the study holds this many finished trials."""
    timeout_s: float | None


def make_sampler(plan: StudyPlan, worker: int) -> optuna.samplers.BaseSampler:
    """TPE, random or grid, seeded by the study's seed (+ the worker's index, so that workers
    do not draw the same values)."""
    import optuna

    seed = plan.seed + worker
    if plan.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if plan.sampler == "grid":
        grid = {d.key: d.grid() for d in plan.dimensions}
        return optuna.samplers.GridSampler(grid, seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def make_pruner(plan: StudyPlan) -> optuna.pruners.BasePruner:
    """Hyperband over epochs 1..max_epochs (Li et al. 2018, 'Hyperband: A Novel Bandit-Based
    Approach to Hyperparameter Optimization'), the median rule, or none."""
    import optuna

    if plan.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=plan.max_epochs)
    if plan.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=MEDIAN_STARTUP_TRIALS, n_warmup_steps=1)
    return optuna.pruners.NopPruner()


def finished_count(study: optuna.Study) -> int:
    """Trials that count toward --trials: finished ones, except those a kill interrupted."""
    import optuna

    states = tuple(optuna.trial.TrialState[name] for name in FINISHED_STATES)
    trials = study.get_trials(deepcopy=False, states=states)
    return sum(1 for t in trials if not t.user_attrs.get(INTERRUPTED))


def run_worker(
    plan: StudyPlan,
    n_trials: int | None,
    worker: int = 0,
    threads: int | None = None,
    train: TrainFunction | None = None,
    gpu: str | None = None,
) -> list[str]:
    """Run up to `n_trials` trials (None: until the timeout or the study's total) with
    `threads` CPU threads and only the CUDA device `gpu` visible; return the reasons of the
    trials that failed here."""
    import optuna

    if gpu is not None:  # before the first CUDA call of this (spawned) process
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu

    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # the trial lines say what happened
    study = optuna.load_study(
        study_name=plan.study_name,
        storage=open_storage(plan.storage, plan.study_dir),
        sampler=make_sampler(plan, worker),
        pruner=make_pruner(plan),
    )
    objective = Objective(
        plan.config, plan.dimensions, plan.metric, plan.study_dir / "trials", plan.overrides, train
    )

    def after_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        print(trial_line(trial, plan.metric), file=sys.stderr, flush=True)
        if plan.trials is not None and finished_count(study) >= plan.trials:
            study.stop()

    study.optimize(
        objective,
        n_trials=n_trials,
        timeout=plan.timeout_s,
        catch=(TrialFailed,),
        callbacks=[after_trial],
    )
    return objective.errors


def trial_line(trial: optuna.trial.FrozenTrial, metric: str) -> str:
    """`trial 007  lr=0.0012 hidden=[128, 64]  val/accuracy 0.9412  complete  1.3 s`."""
    names = {key: key.rsplit(".", 1)[-1] for key in trial.params}
    if len(set(names.values())) < len(names):  # inputs.0.embedding_dim and inputs.1....
        names = {key: key for key in trial.params}
    params = " ".join(f"{names[key]}={_short(v)}" for key, v in trial.params.items())
    state = trial.state.name.lower()
    if trial.value is not None:
        score = f"{metric} {trial.value:.4f}"
    elif trial.intermediate_values:
        epoch = max(trial.intermediate_values)
        score = f"{metric} {trial.intermediate_values[epoch]:.4f} at epoch {epoch}"
    else:
        score = f"{metric} -"
    facts = trial_facts(trial)
    if trial.state.name == "FAIL":
        reason = " ".join(str(facts.get("error") or "see the log").split())  # one line
        state += ": " + (reason if len(reason) <= 200 else reason[:199] + "…")
    seconds = facts.get("seconds") or 0.0
    return f"trial {trial.number:03d}  {params}  {score}  {state}  {seconds:.1f} s"


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
