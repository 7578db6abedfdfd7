"""What a study leaves in its folder besides the trials: study.json (every trial's parameters,
state, score, epochs and run), best.yaml (the best trial's config, ready for `megalith
train`) and study.html (page.py)."""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from megalith.errors import cannot_write
from megalith.evaluate.html import write_atomically
from megalith.tuning.objective import trial_facts
from megalith.tuning.space import overrides_for, param_value
from megalith.tuning.storage import shown_url

if TYPE_CHECKING:
    import optuna

    from megalith.tuning.workers import StudyPlan


@dataclass
class StudyResult:
    """A study's summary (study.json); `best_run` is the best trial's run directory."""

    path: Path
    metric: str
    direction: str
    best_number: int | None
    best_value: float | None
    best_params: dict[str, Any]
    best_run: Path | None
    counts: dict[str, int]
    trials: list[dict[str, Any]] = field(default_factory=list)

    @property
    def completed(self) -> int:
        return self.counts.get("complete", 0)

    @property
    def epochs(self) -> int:
        """Training epochs run over all trials (pruned ones stop early)."""
        return sum(int(t.get("epochs") or 0) for t in self.trials)


def trial_record(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """One trial as study.json lists it; list choices back as lists."""
    facts = trial_facts(trial)
    return {
        "number": trial.number,
        "state": trial.state.name.lower(),
        "value": _finite(trial.value),
        "params": {key: param_value(value) for key, value in trial.params.items()},
        "epochs": facts["epochs"],
        "seconds": facts.get("seconds"),
        "run_dir": facts.get("run_dir"),
        "worker": facts.get("worker"),
        "error": facts.get("error"),
        "curve": {str(k): _finite(v) for k, v in sorted(trial.intermediate_values.items())},
    }


def _best_run(best: optuna.trial.FrozenTrial | None) -> Path | None:
    run_dir = trial_facts(best).get("run_dir") if best is not None else None
    return Path(run_dir) if run_dir else None


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def write_study_files(study: optuna.Study, plan: StudyPlan) -> StudyResult:
    """study.json, best.yaml (when a trial completed) and study.html; print the summary.

    Raises:
        RunError: a file cannot be written (disk full, read-only).
    """
    import optuna

    trials = study.get_trials(deepcopy=False)
    records = [trial_record(t) for t in trials]
    counts: dict[str, int] = {}
    for record in records:
        counts[record["state"]] = counts.get(record["state"], 0) + 1
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = study.best_trial if complete else None
    result = StudyResult(
        path=plan.study_dir,
        metric=plan.metric,
        direction=plan.direction,
        best_number=best.number if best else None,
        best_value=best.value if best else None,
        best_params=trial_record(best)["params"] if best else {},
        best_run=_best_run(best),
        counts=counts,
        trials=records,
    )
    summary = _summary(plan, result)
    from megalith.tuning.page import study_page

    try:
        write_atomically(plan.study_dir / "study.json", json.dumps(summary, indent=1) + "\n")
        if best is not None:
            write_atomically(plan.study_dir / "best.yaml", _best_yaml(plan, result))
        write_atomically(plan.study_dir / "study.html", study_page(study, summary))
    except OSError as error:
        raise cannot_write(
            plan.study_dir, error, "free some disk space; rerun to write them"
        ) from error
    _print_summary(result)
    return result


def _summary(plan: StudyPlan, result: StudyResult) -> dict[str, Any]:
    """What study.json holds."""
    best = None
    if result.best_number is not None:
        best = {
            "number": result.best_number,
            "value": result.best_value,
            "params": result.best_params,
            "run_dir": str(result.best_run) if result.best_run else None,
            "config": _best_config(plan, result),
        }
    return {
        "study": plan.study_name,
        "storage": shown_url(plan.storage),
        "metric": plan.metric,
        "direction": plan.direction,
        "sampler": plan.sampler,
        "pruner": plan.pruner,
        "counts": result.counts,
        "epochs": result.epochs,
        "best": best,
        "trials": result.trials,
    }


def _best_config(plan: StudyPlan, result: StudyResult) -> dict[str, Any]:
    import yaml

    return dict(yaml.safe_load(_best_yaml(plan, result)))


def _best_yaml(plan: StudyPlan, result: StudyResult) -> str:
    """The best run's own config.yaml (paths absolute, defaults filled in) when it is on this
    machine; otherwise the study's config with the best values applied."""
    if result.best_run is not None and (result.best_run / "config.yaml").is_file():
        return (result.best_run / "config.yaml").read_text(encoding="utf-8")
    from megalith.config import config_to_yaml, load_config

    overrides = [*plan.overrides, "tune=null", *overrides_for(result.best_params)]
    return config_to_yaml(load_config(plan.config, overrides)[0])


def _print_summary(result: StudyResult) -> None:
    counts = ", ".join(f"{n} {state}" for state, n in sorted(result.counts.items()))
    print(
        f"{sum(result.counts.values())} trials ({counts}), {result.epochs} epochs", file=sys.stderr
    )
    if result.best_number is not None and result.best_value is not None:
        params = " ".join(f"{k}={v}" for k, v in result.best_params.items())
        print(
            f"best: trial {result.best_number:03d}  {result.metric} "
            f"{result.best_value:.4f}  {params}",
            file=sys.stderr,
        )
    print(f"study written to {result.path} (study.json, best.yaml, study.html)", file=sys.stderr)
