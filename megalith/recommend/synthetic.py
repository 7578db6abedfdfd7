"""Interactions with a known answer: users and items with planted factors and a skewed item
popularity, for tests, examples and benchmarks (no download)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def planted_interactions(
    n_users: int = 200,
    n_items: int = 300,
    per_user: int = 20,
    dim: int = 8,
    strength: float = 2.0,
    skew: float = 1.0,
    seed: int = 0,
) -> pd.DataFrame:
    """A table user, item, rating, timestamp: each user picks distinct items with probability
    proportional to exp(user . item factors) x popularity, where popularity follows Zipf's law
    with exponent `skew` (0: flat). Timestamps increase along each user's picks in a random
    order, so leave-last-out holds out a pick like the others.

    Args:
        n_users / n_items: sizes.
        per_user: the mean number of interactions per user; counts vary like in public rating
            data (at least a quarter of the mean, a long tail above it, below half the items).
        dim: rank of the planted factors (what a factorisation can recover).
        strength: standard deviation of the planted affinity (user . item), in logits.
        skew: Zipf exponent of item popularity (about 1 in public rating data).

    Returns:
        One row per interaction; ratings 1-5 rise with the planted affinity.
    """
    rng = np.random.default_rng(seed)
    scale = (strength / dim**0.5) ** 0.5
    users = rng.normal(size=(n_users, dim)) * scale
    items = rng.normal(size=(n_items, dim)) * scale
    popularity = 1.0 / np.arange(1, n_items + 1) ** skew
    popularity = popularity[rng.permutation(n_items)]
    affinity = users @ items.T  # (U, I), std ~ strength
    low, high = max(1, per_user // 4), max(2, n_items // 2)
    counts = np.clip(low + rng.exponential(per_user - low, size=n_users), low, high).astype(int)
    # Gumbel top-k: sampling without replacement in proportion to exp(logits)
    keys = affinity + np.log(popularity) + rng.gumbel(size=affinity.shape)
    ranked = np.argsort(-keys, axis=1)
    rows = []
    for user in range(n_users):  # a few thousand users: a loop over them is fine here
        picks = rng.permutation(ranked[user, : counts[user]])
        chosen = affinity[user, picks]
        times = rng.integers(0, 10_000_000) + np.cumsum(rng.integers(1, 1000, size=len(picks)))
        ratings = np.clip(np.round(3 + chosen / strength), 1, 5).astype(int)
        rows.append(
            pd.DataFrame(
                {"user": user + 1, "item": picks + 1, "rating": ratings, "timestamp": times}
            )
        )
    return pd.concat(rows, ignore_index=True)


def oracle_scores(
    n_users: int,
    n_items: int,
    dim: int = 8,
    strength: float = 2.0,
    skew: float = 1.0,
    seed: int = 0,
) -> np.ndarray:
    """(n_users, n_items) the planted logits of `planted_interactions` with the same
    arguments: the best any recommender can rank by (indices: id - 1)."""
    rng = np.random.default_rng(seed)
    scale = (strength / dim**0.5) ** 0.5
    users = rng.normal(size=(n_users, dim)) * scale
    items = rng.normal(size=(n_items, dim)) * scale
    popularity = 1.0 / np.arange(1, n_items + 1) ** skew
    popularity = popularity[rng.permutation(n_items)]
    return users @ items.T + np.log(popularity)


def planted_side_tables(
    n_users: int = 200,
    n_items: int = 300,
    dim: int = 8,
    strength: float = 2.0,
    seed: int = 0,
    noise: float = 0.5,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """User and item feature tables for `planted_interactions` with the same sizes, `dim`,
    `strength` and `seed`, read off the planted factors (what a two_tower's towers can learn
    from, and a new user's or item's only clue):

    users: user, `likes` (set: the three factors the user leans to most, e.g. 'f3|f0|f5'),
        `age` (number: the first factor, scaled and shifted like ages, plus noise);
    items: item, `genres` (set: its two largest factors, 'f1|f4'), `year` (number: the second
        factor plus noise), `kind` (category: the sign of the third factor).
    `noise` is the standard deviation of the noise, in factor units.
    """
    rng = np.random.default_rng(seed)
    scale = (strength / dim**0.5) ** 0.5
    users = rng.normal(size=(n_users, dim)) * scale  # the same draws as planted_interactions
    items = rng.normal(size=(n_items, dim)) * scale
    clues = np.random.default_rng(seed + 1)
    noisy_users = users + clues.normal(size=users.shape) * noise * scale
    noisy_items = items + clues.normal(size=items.shape) * noise * scale

    def names(factors: np.ndarray, count: int) -> list[str]:
        top = np.argsort(-factors, axis=1)[:, :count]
        return ["|".join(f"f{d}" for d in row) for row in top]

    user_table = pd.DataFrame(
        {
            "user": np.arange(1, n_users + 1),
            "likes": names(noisy_users, 3),
            "age": np.round(35 + 10 * noisy_users[:, 0] / scale),
        }
    )
    item_table = pd.DataFrame(
        {
            "item": np.arange(1, n_items + 1),
            "genres": names(noisy_items, 2),
            "year": np.round(1990 + 8 * noisy_items[:, 1 % dim] / scale),
            "kind": np.where(noisy_items[:, 2 % dim] > 0, "drama", "comedy"),
        }
    )
    return user_table, item_table
