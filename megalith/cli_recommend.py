"""`megalith recommend RUN --users 1,2,3`: registered on the app in megalith.cli."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from megalith.cli_args import FILE_HINT, RunOrBundleArg, fail
from megalith.errors import cannot_write

if TYPE_CHECKING:
    from megalith.recommend.run import RecommenderRun


def recommend(
    run: RunOrBundleArg,
    users: Annotated[
        str, typer.Option("--users", help="User ids separated by commas, e.g. 1,2,3.")
    ],
    k: Annotated[int, typer.Option("--k", min=1, help="Items per user.")] = 10,
    exclude_seen: Annotated[
        bool,
        typer.Option(
            "--exclude-seen/--include-seen",
            help="Leave out items the user already interacted with (the default).",
        ),
    ] = True,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write a CSV here instead of stdout.")
    ] = None,
    user_features: Annotated[
        Path | None,
        typer.Option(
            "--user-features",
            help="A table of new users' features (the user id column and the run's user "
            "feature columns): a two_tower with user features answers them (cold start).",
        ),
    ] = None,
) -> None:
    """Top-k items per user from a recommender run or its exported bundle (users absent from
    its data get the most popular items, known_user false; with --user-features, a two_tower
    with user features answers new users from theirs, cold_start true)."""
    from megalith.recommend.run import user_list
    from megalith.runtime.recommender import is_recommender_bundle, load_recommender_bundle

    if is_recommender_bundle(run):
        if user_features is not None:
            fail(
                f"{run} is an exported bundle of vectors: new users' features need the user "
                "tower, so give the run directory with --user-features"
            )
        table = load_recommender_bundle(run).recommend(
            user_list(users), k, exclude_seen=exclude_seen
        )
    else:
        features = None
        if user_features is not None:
            from megalith.data.sources import load_table

            if not user_features.exists():
                fail(f"--user-features: {user_features} not found; give a table of new users")
            features = load_table(str(user_features)).frame
        table = _run(run).recommend(
            user_list(users), k, exclude_seen=exclude_seen, user_features=features
        )
    if output is None:
        typer.echo(table.to_csv(index=False), nl=False)
        return
    try:
        table.to_csv(output, index=False)
    except OSError as error:
        raise cannot_write(output, error, FILE_HINT) from error
    typer.echo(f"wrote {output}", err=True)


def _run(run: Path) -> RecommenderRun:
    from megalith.loading import load
    from megalith.recommend.run import RecommenderRun

    loaded = load(run)
    if not isinstance(loaded, RecommenderRun):
        fail(f"{run} is not a recommender run (model.arch {loaded.config.model.arch})")
    return loaded
