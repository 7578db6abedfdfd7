"""`megalith tune`: registered on the app in megalith.cli; Optuna loads only when it runs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from megalith.cli_args import fail


def tune(
    config: Annotated[Path, typer.Argument(help="A YAML config (its tune: block is read too).")],
    space: Annotated[
        Path | None,
        typer.Option("--space", help="Search space YAML: dotted key -> {loguniform: [a, b]}, ..."),
    ] = None,
    trials: Annotated[
        int | None, typer.Option("--trials", min=1, help="The study's total trials (default 20).")
    ] = None,
    timeout: Annotated[
        str | None, typer.Option("--timeout", help="Stop starting trials after 90s, 30m or 2h.")
    ] = None,
    study: Annotated[
        str | None, typer.Option("--study", help="The study's name (default the config's name).")
    ] = None,
    output_dir: Annotated[
        Path | None,
        typer.Option("--output-dir", "-o", help="The study folder (default studies/STUDY)."),
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option(
            "--storage",
            help="postgresql://USER:PASS@HOST/DB (several machines), sqlite:///FILE, or a "
            "journal file (default STUDY_DIR/study.journal).",
        ),
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="Trials at once, each in its own process.")
    ] = 1,
    metric: Annotated[
        str | None,
        typer.Option(
            "--metric", help="Validation metric to optimise (default early_stop's, else val/loss)."
        ),
    ] = None,
    sampler: Annotated[str | None, typer.Option("--sampler", help="tpe, random or grid.")] = None,
    pruner: Annotated[
        str | None, typer.Option("--pruner", help="hyperband (default), median or none.")
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="The sampler's seed (default the config's).")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", "-s", help="Override a config key before sampling (repeatable)."),
    ] = None,
) -> None:
    """Search hyper-parameters with Optuna: each trial a run in STUDY_DIR/trials/NNN, then
    study.json, best.yaml and study.html; rerun the same command to continue a study."""
    from megalith.tuning.study import tune as run_study

    result = run_study(
        config,
        space,
        trials=trials,
        timeout_s=parse_duration(timeout) if timeout else None,
        study=study,
        study_dir=output_dir,
        storage=storage,
        workers=workers,
        metric=metric,
        sampler=sampler,
        pruner=pruner,
        seed=seed,
        overrides=set_ or [],
    )
    if result.best_run is not None:
        typer.echo(f"train the best config: megalith train {result.path / 'best.yaml'}", err=True)


def parse_duration(text: str) -> float:
    """Seconds in '90', '90s', '30m' or '2h'."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text)
    if not match:
        fail(f"--timeout {text}: give a duration like 90s, 30m or 2h")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]
