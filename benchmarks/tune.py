"""`megalith tune`: what pruning saves, what the tuner itself costs per trial, and whether its
process grows, each measured in one run against the same study without the feature.

  - pruning: on two example tasks (breast cancer, val/auc; diabetes, val/r2), a TPE study of
    N trials with Hyperband pruning against the same study (same seed) without pruning: the
    training epochs each ran (goal: pruning runs >= 50% fewer) and the best validation score
    (goal: within 0.5% of the unpruned study's);
  - overhead: a study of 500 trials whose training function only reports three epochs and
    writes eval.json (no model), so that what is timed is sampling (TPE), the journal storage,
    config validation, pruning and bookkeeping: ms per trial around trial 500, wall-clock and
    this process's CPU time (the CPU figure holds on a busy machine) (goal <= 50 ms);
  - memory: the tuning process's resident memory over 200 real 1-epoch trials (goal: grows
    <= 50 MB from trial 20 to the last).
Prints one JSON object per measurement, then a summary with the machine and its load.

    python benchmarks/tune.py [--only pruning|overhead|memory] [--trials 30] [--epochs 20]
    python benchmarks/tune.py --quick      # a few trials of each: checks the code runs
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

import megalith as mg

REPO = Path(__file__).resolve().parents[1]
TASKS = {
    "breast_cancer": ("breast_cancer.yaml", "val/auc"),
    "diabetes": ("diabetes_regression.yaml", "val/r2"),
}
CPU_MARKS: list[float] = []
"""This process's CPU time as each fake training starts: the tuner's own CPU between them."""
SPACE = {
    "train.optimizer.lr": {"loguniform": [1.0e-5, 3.0e-1]},
    "model.hidden": {"choice": [[16], [64], [128, 64]]},
    "model.dropout": {"uniform": [0.0, 0.5]},
    "train.batch_size": {"choice": [16, 32, 64]},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["pruning", "overhead", "memory"], default=None)
    parser.add_argument("--trials", type=int, default=30, help="Trials of each pruning study.")
    parser.add_argument("--epochs", type=int, default=20, help="Epochs of an unpruned trial.")
    parser.add_argument("--task", choices=list(TASKS), default=None, help="One pruning task.")
    parser.add_argument("--quick", action="store_true", help="A few trials of each.")
    args = parser.parse_args()
    trials, epochs = (4, 3) if args.quick else (args.trials, args.epochs)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)
        if args.only in (None, "pruning"):
            tasks = [args.task] if args.task else list(TASKS)
            for task in tasks if not args.quick else ["breast_cancer"]:
                rows.append(_pruning(task, trials, epochs))
                print(json.dumps(rows[-1]), flush=True)
        if args.only in (None, "overhead"):
            rows.append(_overhead(30 if args.quick else 500))
            print(json.dumps(rows[-1]), flush=True)
        if args.only in (None, "memory"):
            rows.append(_memory(10 if args.quick else 200))
            print(json.dumps(rows[-1]), flush=True)
    print(json.dumps({"summary": _goals(rows), "machine": _machine()}), flush=True)


def _config(task: str, epochs: int) -> dict[str, Any]:
    config = yaml.safe_load((REPO / "examples" / TASKS[task][0]).read_text())
    config["train"].update(epochs=epochs, baselines=False, early_stop=None)
    config["train"].pop("schedule", None)  # a cosine schedule would tie lr to the epoch count
    return dict(config)


def _quietly(function: Any, *args: Any, **kwargs: Any) -> Any:
    """Run `function` with the tuner's one line per trial kept off the terminal."""
    with contextlib.redirect_stderr(io.StringIO()):
        return function(*args, **kwargs)


def _pruning(task: str, trials: int, epochs: int) -> dict[str, Any]:
    metric = TASKS[task][1]
    studies = {}
    for pruner in ("hyperband", "none"):
        started = time.perf_counter()
        result = _quietly(
            mg.tune, _config(task, epochs), SPACE, trials=trials, metric=metric, pruner=pruner,
            sampler="tpe", seed=0, study_dir=f"{task}-{pruner}",
        )  # fmt: skip
        studies[pruner] = {
            "epochs": result.epochs,
            "best": result.best_value,
            "pruned": result.counts.get("pruned", 0),
            "failed": result.counts.get("fail", 0),
            "seconds": round(time.perf_counter() - started, 1),
        }
    pruned, full = studies["hyperband"], studies["none"]
    return {
        "measure": "pruning",
        "task": task,
        "metric": metric,
        "trials": trials,
        "epochs_per_trial": epochs,
        "hyperband": pruned,
        "no_pruning": full,
        "epochs_saved": round(1 - pruned["epochs"] / full["epochs"], 3),
        "best_relative_gap": round(abs(pruned["best"] - full["best"]) / abs(full["best"]), 4),
    }


def _fake_train(config: Any, *, output_dir: Path, callbacks: Sequence[Any], **_: Any) -> None:
    """Stands in for megalith.train: three epochs of a made-up score, eval.json, no model."""
    CPU_MARKS.append(time.process_time())
    output_dir.mkdir(parents=True, exist_ok=True)
    overrides = dict(o.split("=", 1) for o in _["overrides"] if o.startswith("train.optimizer"))
    score = 1.0 / (1.0 + abs(float(overrides.get("train.optimizer.lr", "0.01")) - 0.01) * 50)
    for callback in callbacks:
        callback.on_train_start(30, 3, 0)
    for epoch in range(3):
        for callback in callbacks:
            callback.on_epoch_end(epoch, {"val/auc": score * (epoch + 1) / 3})
    (output_dir / "eval.json").write_text(json.dumps({"val": {"auc": score}}))


def _overhead(trials: int) -> dict[str, Any]:
    """The same study in the working folder (its disk syncs every journal write) and, where
    there is one, in memory (/dev/shm: a sync costs nothing there, leaving the CPU's share)."""
    row: dict[str, Any] = {"measure": "overhead", "trials": trials, "sampler": "tpe"}
    row["pruner"] = "hyperband"
    row["disk"] = _overhead_in(Path("overhead").absolute(), trials)
    if Path("/dev/shm").is_dir():
        with tempfile.TemporaryDirectory(dir="/dev/shm") as memory:
            row["memory"] = _overhead_in(Path(memory) / "overhead", trials)
    return row


def _overhead_in(folder: Path, trials: int) -> dict[str, Any]:
    import optuna

    config = _config("breast_cancer", 3)
    started = time.perf_counter()
    CPU_MARKS.clear()
    _quietly(mg.tune, config, SPACE, trials=trials, metric="val/auc", study_dir=folder,
             train=_fake_train)  # fmt: skip
    cpu = [(b - a) * 1000 for a, b in itertools.pairwise(CPU_MARKS)]
    total = time.perf_counter() - started
    storage = optuna.storages.journal.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(folder / "study.journal"))
    )
    study = optuna.load_study(study_name=config["name"], storage=storage)
    starts = [t.datetime_start for t in study.get_trials() if t.datetime_start is not None]
    gaps = [(b - a).total_seconds() * 1000 for a, b in itertools.pairwise(starts)]
    window = min(100, len(gaps) // 3)
    appends = len((folder / "study.journal").read_text().splitlines())
    return {
        "ms_per_trial_first": round(sum(gaps[:window]) / window, 2),
        "ms_per_trial_last": round(sum(gaps[-window:]) / window, 2),
        "window": window,
        "cpu_ms_per_trial_first": round(sum(cpu[:window]) / window, 2),
        "cpu_ms_per_trial_last": round(sum(cpu[-window:]) / window, 2),
        "journal_appends_per_trial": round(appends / trials, 1),
        "fsync_ms": round(_fsync_ms(folder / "fsync-probe"), 2),
        "seconds_total": round(total, 1),
    }


def _fsync_ms(path: Path, repeats: int = 50) -> float:
    """The disk's cost of one small durable append (the journal fsyncs every write)."""
    started = time.perf_counter()
    with path.open("ab") as probe:
        for _ in range(repeats):
            probe.write(b"{}\n")
            probe.flush()
            os.fsync(probe.fileno())
    return (time.perf_counter() - started) * 1000 / repeats


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _memory(trials: int) -> dict[str, Any]:
    from megalith.pipeline import train as megalith_train

    resident: list[float] = []

    def measured_train(*args: Any, **kwargs: Any) -> Any:
        run = megalith_train(*args, **kwargs)
        resident.append(_rss_mb())
        if len(resident) % 20 == 0:  # progress, and figures to read if the run is cut short
            print(
                f"memory: {resident[-1]:.1f} MB after {len(resident)} trials", file=sys.__stderr__
            )
        return run

    config = _config("breast_cancer", 1)
    started = time.perf_counter()
    _quietly(mg.tune, config, SPACE, trials=trials, metric="val/auc", study_dir="memory",
             pruner="none", train=measured_train)  # fmt: skip
    warm = min(19, len(resident) - 1)
    return {
        "measure": "memory",
        "trials": trials,
        "rss_mb_at_trial": {
            str(warm + 1): round(resident[warm], 1),
            str(len(resident)): round(resident[-1], 1),
        },
        "growth_mb": round(resident[-1] - resident[warm], 1),
        "seconds_total": round(time.perf_counter() - started, 1),
    }


def _goals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    goals: dict[str, Any] = {}
    for row in rows:
        if row["measure"] == "pruning":
            goals[f"{row['task']}: epochs saved >= 50%"] = row["epochs_saved"] >= 0.5
            goals[f"{row['task']}: best within 0.5%"] = row["best_relative_gap"] <= 0.005
        elif row["measure"] == "overhead":
            for where in ("disk", "memory"):
                if where in row:
                    last = row[where]["ms_per_trial_last"]
                    goals[f"overhead <= 50 ms/trial at the last trials ({where})"] = last <= 50
                    cpu = row[where]["cpu_ms_per_trial_last"]
                    goals[f"overhead <= 50 CPU ms/trial at the last trials ({where})"] = cpu <= 50
        else:
            goals["memory growth <= 50 MB"] = row["growth_mb"] <= 50
    return goals


def _machine() -> dict[str, Any]:
    import torch

    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
    }


if __name__ == "__main__":
    main()
