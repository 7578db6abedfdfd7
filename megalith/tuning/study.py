"""`tune`: check the space and the config, open (or continue) the study, run its trials in one
or several worker processes, then write study.json, best.yaml and study.html."""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from megalith.errors import ConfigError, RunError, did_you_mean
from megalith.tuning.results import StudyResult, write_study_files
from megalith.tuning.space import (
    Dimension,
    check_keys,
    parse_space,
    read_space,
    section_overrides,
)
from megalith.tuning.storage import (
    JOURNAL,
    LOCK,
    fail_interrupted_trials,
    hold_study_folder,
    open_storage,
    shown_url,
)
from megalith.tuning.workers import StudyPlan, finished_count, run_worker

if TYPE_CHECKING:
    from megalith.config import Config
    from megalith.tuning.objective import TrainFunction

DEFAULT_TRIALS = 20
SEED_STRIDE = 1_000_003
"""A continued study's samplers are seeded seed + SEED_STRIDE * (trials it already holds)."""
SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("hyperband", "median", "none")


def tune(
    config: str | Path | Mapping[str, Any] | Config,
    space: str | Path | Mapping[str, Any] | None = None,
    *,
    trials: int | None = None,
    timeout_s: float | None = None,
    study: str | None = None,
    study_dir: str | Path | None = None,
    storage: str | None = None,
    workers: int = 1,
    metric: str | None = None,
    sampler: str | None = None,
    pruner: str | None = None,
    seed: int | None = None,
    overrides: Sequence[str] = (),
    train: TrainFunction | None = None,
) -> StudyResult:
    """Search the config keys of `space` with Optuna; each trial is a run in STUDY_DIR/trials/NNN.

    Rerunning with the same study folder (or storage and study name) continues the study: the
    trials already finished are kept and count toward `trials`; one a kill interrupted is
    failed and its parameters tried again.

    Args:
        config: a YAML path, a mapping or a Config; its `tune:` block supplies what is not given.
        space: a YAML path or mapping {dotted key: distribution} (see megalith.tuning.space).
        trials: the study's total number of trials (default 20 unless `timeout_s` is given).
        timeout_s: stop starting trials after this many seconds (per worker).
        study: the study's name (default the config's name).
        study_dir: the study folder (default studies/STUDY).
        storage: a database URL (postgresql://, mysql://, sqlite:///) or a journal file path;
            default STUDY_DIR/study.journal.
        workers: trials run at once, each in its own process with cores/workers threads.
        metric: the validation metric to optimise, e.g. val/accuracy (direction from its name).
        sampler: tpe, random or grid. pruner: hyperband, median or none.
        seed: the samplers' seed (default the config's seed); trials train with the config's.
        overrides: 'key=value' applied to the config before the sampled values.
        train: stands in for megalith.train (benchmarks of the tuner's own overhead).
    Returns:
        the study's summary, as written to study.json.
    Raises:
        ConfigError: a bad space (naming the key), metric, sampler, pruner or config.
        RunError: the study folder holds other files, or another tuner runs on it; every
            trial this call ran failed (the first reason).
    """
    if workers < 1:
        raise ConfigError(f"--workers {workers}: give 1 or more")
    plan = _plan(
        config, space, overrides, trials=trials, timeout_s=timeout_s, study=study,
        study_dir=study_dir, storage=storage, metric=metric, sampler=sampler, pruner=pruner,
        seed=seed,
    )  # fmt: skip
    _check_study_dir(plan.study_dir)
    lock = hold_study_folder(plan.study_dir)
    try:
        return _run_study(plan, workers, train)
    finally:
        lock.close()


def _plan(
    config: str | Path | Mapping[str, Any] | Config,
    space: str | Path | Mapping[str, Any] | None,
    overrides: Sequence[str],
    *,
    trials: int | None,
    timeout_s: float | None,
    study: str | None,
    study_dir: str | Path | None,
    storage: str | None,
    metric: str | None,
    sampler: str | None,
    pruner: str | None,
    seed: int | None,
) -> StudyPlan:
    """The study's plan from the arguments, then the config's tune: block, then defaults;
    everything checked before any trial (see tune's Raises)."""
    from megalith.config import load_config

    cfg, _ = load_config(config, overrides)
    settings = cfg.tune
    dimensions = _dimensions(space, settings.space if settings else {})
    resolved = cfg.model_dump(mode="json")
    check_keys(dimensions, resolved)
    filled = section_overrides(
        _as_written(config, overrides), resolved, [d.key for d in dimensions]
    )
    metric = metric or (settings.metric if settings else None) or _default_metric(cfg)
    plan = StudyPlan(
        config=_picklable(config),
        dimensions=dimensions,
        overrides=(*overrides, *filled),
        study_dir=Path(study_dir or Path("studies") / (study or cfg.name)).absolute(),
        study_name=study or cfg.name,
        storage=storage,
        metric=_checked_metric(metric, cfg),
        direction=_direction(metric),
        sampler=_choice(
            "--sampler", sampler or (settings.sampler if settings else "tpe"), SAMPLERS
        ),
        pruner=_choice(
            "--pruner", pruner or (settings.pruner if settings else "hyperband"), PRUNERS
        ),
        max_epochs=_max_epochs(cfg, dimensions),
        seed=cfg.seed if seed is None else seed,
        trials=trials
        or (settings.trials if settings else None)
        or (None if timeout_s else DEFAULT_TRIALS),
        timeout_s=timeout_s,
    )
    if plan.sampler == "grid":
        for dimension in dimensions:
            dimension.grid()  # a continuous key without a step is refused here
    return plan


def _run_study(plan: StudyPlan, workers: int, train: TrainFunction | None) -> StudyResult:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(plan.storage, plan.study_dir)
    study = optuna.create_study(
        study_name=plan.study_name, storage=storage, direction=plan.direction, load_if_exists=True
    )
    _check_same_study(study, plan)
    if plan.storage is None or "://" not in plan.storage:  # a local file: the lock says no one runs
        for number in fail_interrupted_trials(study, storage):
            print(f"trial {number:03d} was interrupted; it runs again", file=sys.stderr)
    done = finished_count(study)
    # a continued study draws anew: the seed moves on with the trials the study already holds
    # (else TPE's random first draws would repeat the first command's)
    held = len(study.get_trials(deepcopy=False))
    plan = dataclasses.replace(plan, seed=plan.seed + SEED_STRIDE * held)
    remaining = None if plan.trials is None else max(plan.trials - done, 0)
    print(
        f"study {plan.study_name} ({shown_url(plan.storage)}): {done} trials done, "
        f"{'until the timeout' if remaining is None else remaining} to run, "
        f"{workers} worker(s), {plan.sampler} + {plan.pruner}, {plan.direction} {plan.metric}",
        file=sys.stderr,
    )
    errors: list[str] = []
    try:
        if remaining != 0:
            errors = _run_workers(plan, remaining, workers, train)
    except BaseException:  # stopped (Ctrl-C, SIGTERM): the files still show what finished
        write_study_files(study, plan)
        raise
    result = write_study_files(study, plan)
    if errors and result.completed == 0:
        raise RunError(f"every trial failed; the first: {errors[0]}")
    return result


def _run_workers(
    plan: StudyPlan, remaining: int | None, workers: int, train: TrainFunction | None
) -> list[str]:
    """This process alone (workers 1), or K spawned processes sharing the CPU's threads and,
    when there are several GPUs, each given one of them in turn."""
    if workers == 1:
        return run_worker(plan, remaining, 0, None, train)
    shares = [None] * workers if remaining is None else _shares(remaining, workers)
    threads = max(1, (os.cpu_count() or 1) // workers)
    gpus = _visible_gpus()
    context = multiprocessing.get_context("spawn")  # torch and fork do not mix
    with context.Pool(workers) as pool:
        jobs = [
            pool.apply_async(
                run_worker,
                (plan, share, index, threads, train),
                {"gpu": gpus[index % len(gpus)] if len(gpus) > 1 else None},
            )
            for index, share in enumerate(shares)
            if share != 0
        ]
        return [error for job in jobs for error in job.get()]


def _visible_gpus() -> list[str]:
    """The CUDA devices this process may use, as CUDA_VISIBLE_DEVICES names them."""
    import torch

    count = torch.cuda.device_count()
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    names = listed.split(",") if listed else [str(i) for i in range(count)]
    return names[:count]


def _shares(total: int, workers: int) -> list[int]:
    return [total // workers + (1 if i < total % workers else 0) for i in range(workers)]


def _dimensions(
    space: str | Path | Mapping[str, Any] | None, block: dict[str, Any]
) -> list[Dimension]:
    if space is None:
        if not block:
            raise ConfigError(
                "no search space: give --space SPACE.yaml or a tune.space block in the config"
            )
        return parse_space(block, "config tune.space")
    if isinstance(space, Mapping):
        return parse_space(dict(space))
    return read_space(Path(space))


def _default_metric(cfg: Config) -> str:
    return cfg.train.early_stop.metric if cfg.train.early_stop else "val/loss"


_METRICS_BY_TYPE = {
    "category": ["accuracy", "macro_f1", "auc"],
    "binary": ["accuracy", "f1", "precision", "recall", "auc"],
    "number": ["mse", "mae", "r2"],
    "text": ["perplexity", "token_accuracy"],
}
"""What validation reports per output type (megalith.evaluate.metrics.metric_names; auc for a
category only with two classes, which is known once the data is read)."""


def _checked_metric(metric: str, cfg: Config) -> str:
    """Raises: ConfigError before any trial for a metric no trial of this config reports."""
    if not metric.startswith("val/") or len(metric) <= 4:
        raise ConfigError(
            f"--metric {metric}: tune watches a validation metric, e.g. val/loss or val/accuracy"
        )
    several = len(cfg.outputs) > 1
    known = ["val/loss"] + [
        f"val/{output.name + '/' if several else ''}{name}"
        for output in cfg.outputs
        for name in _METRICS_BY_TYPE.get(output.type, [])
    ]
    if cfg.model.arch == "asr":  # a speech recognizer (megalith.evaluate.speech.SPEECH_METRICS)
        known = ["val/loss", "val/wer", "val/cer"]
    if metric not in known:
        raise ConfigError(
            f"--metric {metric}: no trial reports it{did_you_mean(metric, known)}; "
            f"choose from {', '.join(known)}"
        )
    return metric


def _direction(metric: str) -> Literal["minimize", "maximize"]:
    from megalith.evaluate.metrics import higher_is_better

    return "maximize" if higher_is_better(metric) else "minimize"


def _choice(option: str, value: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ConfigError(f"{option} {value}: choose {', '.join(choices)}")
    return value


def _max_epochs(cfg: Config, dimensions: list[Dimension]) -> int:
    """Hyperband's largest budget: the config's epochs, or the most a tuned train.epochs takes."""
    for dimension in dimensions:
        if dimension.key == "train.epochs":
            return int(max(dimension.choices) if dimension.choices else dimension.high)
    return cfg.train.epochs


def _as_written(
    config: str | Path | Mapping[str, Any] | Config, overrides: Sequence[str]
) -> dict[str, Any]:
    """The config as its author wrote it (defaults not filled in), with the overrides."""
    import copy

    from megalith.config import Config, apply_override, read_yaml

    if isinstance(config, Config):
        data = config.model_dump(mode="json", exclude_unset=True)
    elif isinstance(config, Mapping):
        data = copy.deepcopy(dict(config))
    else:
        data = read_yaml(Path(config))
    for override in overrides:
        apply_override(data, override)
    return data


def _picklable(config: str | Path | Mapping[str, Any] | Config) -> str | dict[str, Any]:
    if isinstance(config, str | Path):
        return str(config)
    if isinstance(config, Mapping):
        return dict(config)
    return config.model_dump(mode="json", exclude_unset=True)


def _check_study_dir(folder: Path) -> None:
    """New, empty, or a study folder already (continued); its parent must exist."""
    if folder.exists():
        if not folder.is_dir():
            raise RunError(f"--output-dir {folder} is a file; choose a folder for the study")
        ours = {JOURNAL, LOCK, "trials", "study.json"}
        if any(folder.iterdir()) and not any((folder / name).exists() for name in ours):
            raise RunError(f"--output-dir {folder} holds other files; choose a new or empty folder")
        return
    try:
        folder.mkdir(parents=True)
    except OSError as error:
        raise RunError(f"cannot create the study folder {folder}: {error.strerror}") from error


def _check_same_study(study: Any, plan: StudyPlan) -> None:
    """A continued study must watch the same metric over the same keys."""
    recorded = study.user_attrs
    keys = sorted(d.key for d in plan.dimensions)
    if not recorded:
        study.set_user_attr("metric", plan.metric)
        study.set_user_attr("keys", keys)
        return
    if recorded.get("metric") != plan.metric or recorded.get("keys") != keys:
        raise ConfigError(
            f"study {plan.study_name} was started watching {recorded.get('metric')} over "
            f"{', '.join(recorded.get('keys', []))}; give the same metric and space to continue "
            "it, or a new --study name (or study folder)"
        )
