"""Scoring a recommender and its reference points (most popular, random) on held-out items,
by full ranking and by the sampled protocol with the run's saved negatives."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from megalith.models.recommenders import Recommender
from megalith.recommend.metrics import ScoreAll, ScorePairs, full_ranking, sampled_ranking
from megalith.recommend.split import TEST
from megalith.recommend.store import RecommendState


def model_scorers(model: Recommender, n_items: int) -> tuple[ScoreAll, ScorePairs]:
    """The model's (all items, candidate) scorers, in eval mode, without gradients."""
    model.eval()
    catalogue = torch.arange(n_items)

    @torch.no_grad()
    def score_all(users: torch.Tensor) -> torch.Tensor:
        return model.score_matrix(users, catalogue).float()

    @torch.no_grad()
    def score_pairs(users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return model.score_matrix_pairs(users, items).float()

    return score_all, score_pairs


def popularity_scorers(popularity: np.ndarray, seed: int) -> tuple[ScoreAll, ScorePairs]:
    """Most popular: the train interaction count, ties broken by a seeded permutation."""
    jitter = np.random.default_rng(seed).permutation(len(popularity)) / (2.0 * len(popularity))
    scores = torch.as_tensor(popularity + jitter)
    return (
        lambda users: scores.expand(len(users), -1),
        lambda users, items: scores[items],
    )


def random_scorers(n_items: int, seed: int) -> tuple[ScoreAll, ScorePairs]:
    """Random: a fresh seeded score per (user, item), the same on every call."""
    generator = torch.Generator().manual_seed(seed)
    user_keys = torch.rand(1 << 20, generator=generator, dtype=torch.float64)
    item_keys = torch.rand(n_items, generator=generator, dtype=torch.float64)

    def score_pairs(users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        mixed = user_keys[users % len(user_keys)][:, None] * 9973.0 + item_keys[items] * 7919.0
        return torch.frac(torch.sin(mixed) * 43758.5453)  # a hash in [0, 1)

    def score_all(users: torch.Tensor) -> torch.Tensor:
        return score_pairs(users, torch.arange(n_items).expand(len(users), -1))

    return score_all, score_pairs


def rank_scores(
    scorers: tuple[ScoreAll, ScorePairs],
    state: RecommendState,
    negatives: tuple[np.ndarray, np.ndarray, np.ndarray],
    k: int,
    split: int = TEST,
) -> dict[str, float]:
    """Full-ranking metrics, then the sampled protocol's as sampled_hr@K, sampled_ndcg@K,
    sampled_mrr."""
    score_all, score_pairs = scorers
    full = full_ranking(
        score_all, state.seen_before(split), state.held_out(split), state.n_items, k
    )
    sampled = sampled_ranking(score_pairs, *negatives, k=k)
    return full | {f"sampled_{name}": value for name, value in sampled.items()}


def evaluate_recommender(
    model: Recommender,
    state: RecommendState,
    negatives: tuple[np.ndarray, np.ndarray, np.ndarray],
    k: int,
    seed: int,
) -> dict[str, Any]:
    """eval.json's `test` (the model) and `recommender_baselines` (most popular, random)."""
    return {
        "test": rank_scores(model_scorers(model, state.n_items), state, negatives, k),
        "recommender_baselines": {
            "most_popular": rank_scores(
                popularity_scorers(state.popularity(), seed), state, negatives, k
            ),
            "random": rank_scores(random_scorers(state.n_items, seed), state, negatives, k),
        },
    }
