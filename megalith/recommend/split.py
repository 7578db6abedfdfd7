"""Held-out interactions per user: leave-last-out, random per user, a global time cut, or
whole users held out (cold start).

Each rule returns the split of every interaction: 0 train, 1 val, 2 test. All are seeded or
deterministic, so `megalith evaluate` and the benchmarks rebuild the same split.
"""

from __future__ import annotations

import numpy as np

from megalith.errors import DataError
from megalith.recommend.interactions import Interactions
from megalith.recommend.settings import RecommendConfig

TRAIN, VAL, TEST = 0, 1, 2


def split_interactions(data: Interactions, config: RecommendConfig, seed: int) -> np.ndarray:
    """int8 (N,): TRAIN, VAL or TEST for each interaction, by `config.split`.

    Raises:
        DataError: no interaction could be held out (every user has a single interaction, or
            every timestamp is the same).
    """
    if config.split == "leave_last_out":
        split = leave_last_out(data.users, data.times, config.val)
    elif config.split == "random":
        split = random_per_user(data.users, config.holdout, config.val, seed)
    elif config.split == "time":
        split = time_cut(data.times, config.time_cut, config.val)
    else:
        split = cold_users(data.users, config.holdout, config.val, seed)
    if not (split == TEST).any():
        raise DataError(
            f"split {config.split}: no interaction is held out for test (each user needs at "
            "least 2 interactions, a time cut needs timestamps after it)"
        )
    return split


def _position_from_end(users: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For interactions sorted by `order` within each user: how many of the user's
    interactions come after each one, and the user's count (both in the original order)."""
    counts = np.bincount(users, minlength=int(users.max()) + 1)
    sorted_users = users[order]
    starts = np.concatenate([[0], np.cumsum(counts)])[sorted_users]
    position = np.arange(len(order)) - starts  # 0 = the user's first
    after = np.empty(len(order), dtype=np.int64)
    after[order] = counts[sorted_users] - 1 - position
    return after, counts[users]


def leave_last_out(users: np.ndarray, times: np.ndarray, val: bool) -> np.ndarray:
    """Each user's latest interaction is TEST and (with `val`) the one before it VAL.

    Interactions with the same timestamp are ordered by their row in the file: the later row
    counts as the later interaction. A user needs 2 interactions to have a test item and 3 for
    a val item (the rest stay in train, so every evaluated user has history).
    """
    order = np.lexsort((np.arange(len(users)), times, users))
    after, count = _position_from_end(users, order)
    split = np.zeros(len(users), dtype=np.int8)
    split[(after == 0) & (count >= 2)] = TEST
    if val:
        split[(after == 1) & (count >= 3)] = VAL
    return split


def random_per_user(users: np.ndarray, holdout: float, val: bool, seed: int) -> np.ndarray:
    """A seeded `holdout` share of each user's interactions is TEST (rounded, at least one when
    the user has 2+, never all), and with `val` as many again is VAL where that leaves one."""
    keys = np.random.default_rng(seed).random(len(users))
    order = np.lexsort((keys, users))
    after, count = _position_from_end(users, order)
    n_test = np.where(count >= 2, np.clip(np.round(holdout * count), 1, count - 1), 0)
    split = np.zeros(len(users), dtype=np.int8)
    split[after < n_test] = TEST
    if val:
        n_val = np.minimum(n_test, count - 1 - n_test)
        split[(after >= n_test) & (after < n_test + n_val)] = VAL
    return split


def time_cut(times: np.ndarray, quantile: float, val: bool) -> np.ndarray:
    """Every interaction after the `quantile` of timestamps is TEST; with `val`, the same share
    of interactions just before the cut is VAL. Users met only after the cut are cold: they
    are left out of evaluation (see `megalith.recommend.evaluate`)."""
    cut = np.quantile(times, quantile)
    split = np.zeros(len(times), dtype=np.int8)
    split[times > cut] = TEST
    if val:
        val_cut = np.quantile(times, max(0.0, 2 * quantile - 1))
        split[(times > val_cut) & (times <= cut)] = VAL
    return split


def cold_users(users: np.ndarray, holdout: float, val: bool, seed: int) -> np.ndarray:
    """Every interaction of a seeded `holdout` share of the users (rounded, at least one, never
    all) is TEST, and with `val` every interaction of as many other users is VAL: users the
    model has never met, answered from their features (a two_tower with user_features)."""
    present = np.unique(users)
    shuffled = np.random.default_rng(seed).permutation(present)
    n_test = int(np.clip(round(holdout * len(present)), 1, max(1, len(present) - 1)))
    split = np.zeros(len(users), dtype=np.int8)
    if len(present) < 2:
        return split
    split[np.isin(users, shuffled[:n_test])] = TEST
    if val:
        n_val = min(n_test, len(present) - 1 - n_test)
        split[np.isin(users, shuffled[n_test : n_test + n_val])] = VAL
    return split
