"""The `recommend:` section of a config: which columns, which split, which loss."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveInt, model_validator

from megalith.configbase import ConfigModel
from megalith.data.features import InputFeature

RECOMMENDER_ARCHS = ("mf", "ncf", "two_tower")
"""`model.arch` values that are recommenders (trained on interactions, not rows)."""


class RecommendConfig(ConfigModel):
    """How an interactions table becomes training pairs, held-out items and ranking metrics."""

    user: str = "user"
    """Column holding the user id."""
    item: str = "item"
    """Column holding the item id."""
    rating: str | None = None
    """Column holding an explicit rating (needed by feedback: explicit)."""
    timestamp: str | None = None
    """Column holding when the interaction happened (numbers or dates); without it the file's
    row order is the time order."""
    feedback: Literal["implicit", "explicit"] = "implicit"
    """implicit: every interaction is a positive, ranked against sampled negatives;
    explicit: the rating is regressed (MSE), and RMSE / MAE are reported."""
    min_rating: float | None = None
    """implicit only: interactions rated below this are dropped (not positives)."""
    split: Literal["leave_last_out", "random", "time", "cold_users"] = "leave_last_out"
    """leave_last_out: each user's latest interaction is the test item (ties: the later row of
    the file); random: a seeded `holdout` fraction of each user's interactions; time: every
    interaction after the `time_cut` quantile of timestamps; cold_users: every interaction of
    a seeded `holdout` fraction of users (new users: a two_tower with user_features answers
    them from their features)."""
    holdout: float = Field(0.2, gt=0, lt=1)
    """random: fraction of each user's interactions held out for test; cold_users: fraction
    of users."""
    time_cut: float = Field(0.8, gt=0, lt=1)
    """time only: the quantile of timestamps after which interactions are test."""
    val: bool = False
    """Also hold out a validation item per user (the second latest, or a second random
    fraction / time quantile), scored after every epoch into metrics.jsonl."""
    loss: Literal["bce", "bpr", "softmax"] = "bce"
    """bce: binary cross-entropy of each positive and its sampled negatives; bpr: Bayesian
    personalised ranking (Rendle et al. 2009); softmax: in-batch sampled softmax with the
    log-frequency (logQ) correction (Yi et al. 2019)."""
    negatives: PositiveInt = 4
    """bce / bpr: negatives sampled per positive at every step."""
    sampler: Literal["uniform", "popularity"] = "uniform"
    """How bce / bpr negatives are drawn: uniformly over items, or in proportion to their
    number of train interactions."""
    eval_negatives: PositiveInt = 99
    """The sampled protocol: negatives drawn once (with the run's seed) per held-out item and
    saved in the run directory."""
    k: PositiveInt = 10
    """Cut-off of HR@K, NDCG@K, Recall@K and coverage@K."""
    user_features: list[InputFeature] = []
    """Columns of the `data.users` table fed to the user tower (two_tower), each encoded as
    an input of its type (number, binary, category, text, set)."""
    item_features: list[InputFeature] = []
    """Columns of the `data.items` table fed to the item tower (two_tower); multi-valued
    categories such as genres `Action|Comedy` are `{type: set, separator: "|"}`."""

    @property
    def training_loss(self) -> str:
        """The loss trained: `loss`, or mse (of the standardised rating) for explicit
        feedback, which ignores `loss`."""
        return "mse" if self.feedback == "explicit" else self.loss

    @model_validator(mode="after")
    def _explicit_needs_ratings(self) -> RecommendConfig:
        if self.feedback == "explicit" and self.rating is None:
            raise ValueError("feedback explicit needs `rating:` naming the rating column")
        if self.split == "time" and self.timestamp is None:
            raise ValueError("split time needs `timestamp:` naming the timestamp column")
        for side, features in (("user", self.user_features), ("item", self.item_features)):
            names = [feature.name for feature in features]
            twice = sorted({name for name in names if names.count(name) > 1})
            if twice:
                raise ValueError(
                    f"recommend.{side}_features: column(s) {', '.join(map(repr, twice))} "
                    "listed twice; list each column once"
                )
        return self
