"""Split rules: leave-last-out (ties by file order), random per user, global time cut."""

from __future__ import annotations

import numpy as np
import pytest

from megalith.errors import DataError
from megalith.recommend.interactions import Interactions
from megalith.recommend.settings import RecommendConfig
from megalith.recommend.split import (
    TEST,
    TRAIN,
    VAL,
    leave_last_out,
    random_per_user,
    split_interactions,
    time_cut,
)


def test_leave_last_out_holds_out_each_users_latest() -> None:
    users = np.array([0, 1, 0, 0, 1, 2])
    times = np.array([5.0, 1.0, 9.0, 7.0, 3.0, 4.0])
    split = leave_last_out(users, times, val=True)
    # user 0: 9 test, 7 val, 5 train; user 1: 3 test, 1 train (2 interactions: no val);
    # user 2 has one interaction: nothing to hold out
    assert split.tolist() == [TRAIN, TRAIN, TEST, VAL, TEST, TRAIN]


def test_leave_last_out_breaks_timestamp_ties_by_file_order() -> None:
    users = np.array([0, 0, 0, 0])
    times = np.array([1.0, 8.0, 8.0, 2.0])
    split = leave_last_out(users, times, val=True)
    assert split.tolist() == [TRAIN, VAL, TEST, TRAIN]  # the later row of the tie is test


def test_random_per_user_holds_out_a_share_of_each_user_and_is_seeded() -> None:
    users = np.repeat(np.arange(4), 10)
    split = random_per_user(users, holdout=0.2, val=True, seed=3)
    for user in range(4):
        mine = split[users == user]
        assert (mine == TEST).sum() == 2 and (mine == VAL).sum() == 2
    assert np.array_equal(split, random_per_user(users, 0.2, True, seed=3))
    assert not np.array_equal(split, random_per_user(users, 0.2, True, seed=4))
    assert (random_per_user(np.array([0, 1, 1]), 0.5, False, 0) == TEST).sum() == 1


def test_time_cut_is_global() -> None:
    times = np.arange(10, dtype=float)
    split = time_cut(times, quantile=0.8, val=True)
    assert split.tolist() == [TRAIN] * 6 + [VAL] * 2 + [TEST] * 2


def test_nothing_to_hold_out_is_an_error() -> None:
    data = Interactions(
        np.array([0, 1]), np.array([0, 0]), None, np.array([0.0, 1.0]), ["a", "b"], ["x"]
    )
    with pytest.raises(DataError, match="no interaction is held out"):
        split_interactions(data, RecommendConfig(), seed=0)


@pytest.mark.parametrize("split", ["leave_last_out", "random", "time"])
@pytest.mark.parametrize("feedback", ["implicit", "explicit"])
def test_a_re_rated_pair_never_sits_in_train_and_test(split: str, feedback: str) -> None:
    import pandas as pd

    from megalith.recommend.interactions import encode_interactions

    rng = np.random.default_rng(0)
    # 30 users rating 6 items each, then re-rating 3 of them later
    rows = [(u, i, int(rng.integers(1, 6)), u * 100 + i) for u in range(30) for i in range(6)]
    rows += [
        (u, i, int(rng.integers(1, 6)), 10_000 + u * 100 + i) for u in range(30) for i in (0, 2, 4)
    ]
    frame = pd.DataFrame(rows, columns=["user", "item", "rating", "t"])
    config = RecommendConfig(rating="rating", timestamp="t", feedback=feedback, split=split)
    data = encode_interactions(frame, config, "t")
    assert len(data) == 30 * 6  # each pair once: its latest row
    latest = frame.sort_values("t").groupby(["user", "item"]).last()["rating"]
    stored = pd.Series(
        data.ratings,
        index=pd.MultiIndex.from_arrays(
            [
                np.array(data.user_ids)[data.users].astype(int),
                np.array(data.item_ids)[data.items].astype(int),
            ]
        ),
    )
    assert (stored.sort_index() == latest.sort_index()).all()  # the re-rating replaced the first
    labels = split_interactions(data, config, seed=1)
    pairs = data.users * len(data.item_ids) + data.items
    assert not set(pairs[labels == TRAIN]) & set(pairs[labels == TEST])


def test_cold_users_holds_out_whole_users_seeded() -> None:
    from megalith.recommend.split import cold_users

    users = np.repeat(np.arange(10), 4)
    split = cold_users(users, holdout=0.2, val=True, seed=2)
    per_user = {int(u): set(split[users == u].tolist()) for u in range(10)}
    assert all(len(labels) == 1 for labels in per_user.values())  # all of a user, or none
    assert sum(labels == {TEST} for labels in per_user.values()) == 2
    assert sum(labels == {VAL} for labels in per_user.values()) == 2
    assert np.array_equal(split, cold_users(users, holdout=0.2, val=True, seed=2))
