"""`megalith.load(path)`: any run directory, as the `Run` of its kind — a recommender run
(config with `recommend:`) as a `RecommenderRun`, every other run as a `Run`.

It sits above both so that `megalith.run` never imports the recommenders built on it.
"""

from __future__ import annotations

from pathlib import Path

from megalith.config import load_config
from megalith.run import Run
from megalith.runs import RunDir


def load(path: str | Path) -> Run:
    """Load a run directory: `megalith.load("runs/digits-cnn").predict(frame)`, or
    `megalith.load("runs/movies").recommend(["42"], k=10)`."""
    run_dir = RunDir(Path(path))
    run_dir.check_complete()
    config, _ = load_config(run_dir.config)
    if config.recommend is not None:
        from megalith.recommend.run import RecommenderRun

        return RecommenderRun.from_dir(run_dir, config)
    return Run.load(path)
