"""`RecommenderRun`: a trained recommender's run directory loaded back — top-k lists for
users, and its evaluation again on the saved split and negatives."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from rich.console import Console

from megalith.config import Config
from megalith.data.preprocess import Preprocessor
from megalith.errors import DataError, RunError
from megalith.models.recommenders import Recommender, TwoTower
from megalith.recommend.interactions import entity_ids
from megalith.recommend.store import RecommendState, load_negatives
from megalith.recommend.train import build_recommender, score_run, train_recommender
from megalith.run import Run
from megalith.run_weights import load_weights
from megalith.runs import RunDir
from megalith.runtime.recommender import RECOMMEND_COLUMNS, user_names


class RecommenderRun(Run):
    """A trained recommender: `recommend(users, k)`, `evaluate()` on its saved split."""

    def __init__(
        self, path: Path, config: Config, model: Recommender, state: RecommendState
    ) -> None:
        super().__init__(path, config, Preprocessor([], []), model)
        self.recommender = model
        self.state = state
        self._user_index = {user: i for i, user in enumerate(state.user_ids)}

    @property
    def user_ids(self) -> list[str]:
        return self.state.user_ids

    @property
    def item_ids(self) -> list[str]:
        return self.state.item_ids

    @property
    def user_column(self) -> str:
        """The interactions' user id column (what `user_features` tables hold the ids in)."""
        return self.config.recommend.user if self.config.recommend is not None else "user"

    @property
    def reads_user_features(self) -> bool:
        """Whether new users can be answered from their features (a two_tower with them)."""
        return "user" in self.state.sides

    @property
    def user_feature_columns(self) -> list[str]:
        """The columns new users' features must hold (those of `recommend.user_features`)."""
        if self.config.recommend is None or "user" not in self.state.sides:
            return []
        return [feature.name for feature in self.config.recommend.user_features]

    @classmethod
    def from_dir(cls, run_dir: RunDir, config: Config) -> RecommenderRun:
        """Load the ids, interactions and weights of a recommender run directory."""
        state = RecommendState.load(run_dir.path)
        model = build_recommender(config, state)
        model.load_state_dict(load_weights(run_dir.weights, model))
        return cls(run_dir.path, config, model, state)

    def evaluate(self, data: pd.DataFrame | str | Path | None = None) -> dict[str, Any]:
        """eval.json's `test` and `recommender_baselines` again, with the saved negatives
        (`eval_negatives.safetensors`), so a re-evaluation gives the same numbers."""
        if data is not None:
            raise RunError(
                f"{self.path} is a recommender: it is evaluated on the split and negatives saved "
                "in its run directory; leave --data out"
            )
        negatives = load_negatives(self.path)
        return score_run(self.recommender, self.state, negatives, self.config)

    def write_report(self) -> Path:
        """RUN/report.html again from eval.json: the model beside most-popular and random."""
        from megalith.recommend.report import write_recommender_report

        scores = self.metrics
        if "test" not in scores or "recommender_baselines" not in scores:
            raise RunError(f"{self.path}: eval.json has no scores; run `megalith evaluate` first")
        write_recommender_report(RunDir(self.path), self.config, scores)
        return self.path / "report.html"

    def predict(self, data: Any, *, base_dir: Any = None) -> pd.DataFrame:
        raise RunError(
            f"{self.path} is a recommender: use `megalith recommend RUN --users ...` "
            "(Run.recommend) for top-k items"
        )

    def export(
        self,
        output: str | Path | None = None,
        *,
        format: str = "onnx",
        overwrite: bool = False,
        exporter: str = "dynamo",
    ) -> Path:
        """User and item vectors as a bundle for `megalith.runtime.recommender` (top-k by an
        exact matrix product without PyTorch); see `megalith.recommend.export`."""
        from megalith.recommend.export import export_recommender

        explicit = (
            self.config.recommend is not None and self.config.recommend.feedback == "explicit"
        )
        return export_recommender(
            self.path, self.recommender, self.state, output, overwrite=overwrite, explicit=explicit
        )

    def recommend(
        self,
        users: Sequence[str | int] | str | int,
        k: int = 10,
        *,
        exclude_seen: bool = True,
        user_features: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        """The top `k` items for each user, best first.

        Args:
            users: user ids as written in the interactions table (numbers or text); one id
                alone is one user.
            k: items per user (at most the catalogue).
            exclude_seen: leave out items the user interacted with in the training data.
            user_features: rows of new users (absent from the run's data): the user id
                column and the user feature columns, as in `data.users`; a two_tower with
                user features answers them from these (cold start).

        Returns:
            One row per (user, rank): user, rank (1 = best), item, score (the logit for
            implicit feedback, the predicted rating in the table's units for explicit; for
            the most popular items, their train interactions), known_user (False: a user
            absent from the run's data) and cold_start (True: a user without train
            interactions answered by the user tower from their features alone). A user
            neither known nor given features gets the most popular items.

        Raises:
            DataError: no users are given, k is not positive, or `user_features` lacks a
                column, cannot be encoded, or is given to a run without user features.
        """
        names = user_names(users)
        if k < 1:
            raise DataError(f"recommend: k must be >= 1 (got {k})")
        k = min(k, self.state.n_items)
        known = [self._user_index.get(name) for name in names]
        scores = self._in_rating_units(
            self.scores_for([index for index in known if index is not None]).numpy()
        )
        strangers = [name for name, index in zip(names, known, strict=True) if index is None]
        new = self._new_user_scores(strangers, user_features)
        history = self.state.has_history("user") if "user" in self.state.sides else None
        rows: list[dict[str, Any]] = []
        warm = iter(scores)
        for name, index in zip(names, known, strict=True):
            cold = name in new
            if index is not None:
                values = next(warm).copy()
                if exclude_seen:
                    values[self._seen_items(index)] = -np.inf
                cold = history is not None and not history[index]
            else:
                values = new[name] if cold else self.state.popularity()
            rows += _ranked(name, values, k, self.state.item_ids, index is not None, cold)
        return pd.DataFrame(rows, columns=RECOMMEND_COLUMNS)

    def _in_rating_units(self, scores: np.ndarray) -> np.ndarray:
        """Explicit feedback: the model regresses the standardised rating; undo that."""
        if self.config.recommend is not None and self.config.recommend.feedback == "explicit":
            return scores * self.state.rating_std + self.state.rating_mean
        return scores

    def _new_user_scores(
        self, names: list[str], frame: pd.DataFrame | None = None
    ) -> dict[str, np.ndarray]:
        """Every item's score for the users of `names` that have a row in `frame`, from
        their features through the user tower."""
        if frame is None or not names:
            return {}
        config = self.config.recommend
        features = self.state.sides.get("user")
        if features is None or config is None or not isinstance(self.recommender, TwoTower):
            raise DataError(
                f"{self.path}: this run reads no user features (recommend.user_features), so "
                "it cannot answer new users from theirs; leave the features out"
            )
        origin = "user features"
        if config.user not in frame.columns:
            raise DataError(f"{origin}: no column '{config.user}' holding the user ids")
        index: dict[str, int] = {}
        for position, value in enumerate(
            map(str, entity_ids(frame[config.user], config.user, origin))
        ):
            if value in index:  # which row would answer for that user?
                raise DataError(
                    f"{origin}: rows {index[value] + 1} and {position + 1}, column "
                    f"'{config.user}': the user '{value}' appears twice; keep one row per user"
                )
            index[value] = position
        chosen = [name for name in names if name in index]
        if not chosen:
            return {}
        features.preprocessor.trained_model = f"the user tower of {self.path}"
        with np.errstate(over="ignore"):  # a number too large for float32: refused below
            arrays = features.encode(frame.iloc[[index[name] for name in chosen]], origin)
        for column, array in arrays.items():
            if np.issubdtype(array.dtype, np.floating):
                rows = ~np.isfinite(array.reshape(len(chosen), -1)).all(axis=1)
                if rows.any():  # e.g. 1e300: finite, but not once scaled to float32
                    raise DataError(
                        f"{origin}: column '{column}', user '{chosen[int(np.argmax(rows))]}': "
                        "the value is too large to encode; give a number of the size the "
                        "run's data holds, or leave the cell empty"
                    )
        items = torch.arange(self.state.n_items)
        with torch.no_grad():
            model = self.recommender.eval()
            vectors = model.new_user_vectors({n: torch.as_tensor(a) for n, a in arrays.items()})
            scores = vectors @ model.item_vectors(items).T + model.item_bias(items)
        return dict(zip(chosen, self._in_rating_units(scores.float().numpy()), strict=True))

    def scores_for(self, users: Sequence[int]) -> torch.Tensor:
        """float32 (len(users), n_items): the model's score of every item for user indices."""
        if not users:
            return torch.zeros(0, self.state.n_items)
        with torch.no_grad():
            return (
                self.recommender.eval()
                .score_matrix(
                    torch.as_tensor(list(users), dtype=torch.long), torch.arange(self.state.n_items)
                )
                .float()
            )

    def _seen_items(self, user: int) -> np.ndarray:
        return self.state.items[self.state.users == user]


def _ranked(
    name: str, values: np.ndarray, k: int, item_ids: list[str], known: bool, cold: bool
) -> list[dict[str, Any]]:
    """The top `k` rows of one user; ties go to the lower item index, as in the runtime."""
    order = np.argsort(-values, kind="stable")[: min(k, int(np.isfinite(values).sum()))]
    return [
        {
            "user": name,
            "rank": rank + 1,
            "item": item_ids[int(item)],
            "score": float(values[item]),
            "known_user": known,
            "cold_start": cold,
        }
        for rank, item in enumerate(order)
    ]


def train_recommender_run(
    cfg: Config, run_dir: RunDir, resuming: bool, overwrite: bool, console: Console
) -> RecommenderRun:
    """`megalith train` for a config with `recommend:` (called by megalith.pipeline)."""
    model, state = train_recommender(cfg, run_dir, overwrite, console, resuming)
    return RecommenderRun(run_dir.path, cfg, model, state)


def user_list(text: str) -> list[str]:
    """'1,2, 3' -> ['1', '2', '3'] (the CLI's --users); an id given twice is kept once."""
    users = list(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    if not users:
        raise DataError("--users: give user ids separated by commas, e.g. --users 1,2,3")
    return users
