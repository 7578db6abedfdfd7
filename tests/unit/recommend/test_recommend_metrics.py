"""Ranking metrics against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from megalith.recommend.metrics import full_ranking, sample_eval_negatives, sampled_ranking

# 2 users x 5 items; higher = first
SCORES = torch.tensor([[0.9, 0.8, 0.7, 0.6, 0.5], [0.1, 0.2, 0.3, 0.4, 0.5]])


def _score_all(users: torch.Tensor) -> torch.Tensor:
    return SCORES[users]


def test_full_ranking_by_hand() -> None:
    # user 0 saw item 0, so its ranking is 1, 2, 3, 4; its held-out item 2 is 2nd.
    # user 1 saw nothing; held out: items 4 (1st) and 0 (5th).
    seen = (np.array([0]), np.array([0]))
    held_out = (np.array([0, 1, 1]), np.array([2, 4, 0]))
    got = full_ranking(_score_all, seen, held_out, n_items=5, k=2, batch_users=1)
    ndcg_user0 = (1 / math.log2(3)) / 1.0
    ndcg_user1 = 1.0 / (1 + 1 / math.log2(3))  # one hit at rank 1 of an ideal two
    assert got["hr@2"] == pytest.approx(1.0)
    assert got["ndcg@2"] == pytest.approx((ndcg_user0 + ndcg_user1) / 2)
    assert got["recall@2"] == pytest.approx((1.0 + 0.5) / 2)
    assert got["mrr"] == pytest.approx((1 / 2 + 1 / 1) / 2)
    # top 2: user 0 -> items 1, 2; user 1 -> items 4, 3
    assert got["coverage@2"] == pytest.approx(4 / 5)
    assert got["users"] == 2


def test_sampled_ranking_by_hand_with_pessimistic_ties() -> None:
    def score_pairs(users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return SCORES[users[:, None], items]

    users = np.array([0, 1])
    positives = np.array([1, 2])
    negatives = np.array([[0, 4], [0, 1]])  # user 0: 0.9 beats the positive; user 1: none do
    got = sampled_ranking(score_pairs, users, positives, negatives, k=1)
    assert got["hr@1"] == pytest.approx(0.5)
    assert got["ndcg@1"] == pytest.approx(0.5)
    assert got["mrr"] == pytest.approx((1 / 2 + 1) / 2)
    constant = sampled_ranking(lambda u, i: torch.zeros(i.shape), users, positives, negatives, k=1)
    assert constant["hr@1"] == 0.0  # a tie is not a hit


def test_eval_negatives_avoid_every_interaction_and_are_seeded() -> None:
    interacted = (np.array([0, 0, 0, 1]), np.array([0, 1, 2, 5]))
    users = np.array([0, 1])
    drawn = sample_eval_negatives(users, interacted, n_items=50, count=20, seed=7)
    assert drawn.shape == (2, 20)
    assert not set(drawn[0]) & {0, 1, 2} and 5 not in drawn[1]
    assert all(len(set(row)) == 20 for row in drawn)
    assert np.array_equal(drawn, sample_eval_negatives(users, interacted, 50, 20, seed=7))


def test_full_ranking_of_1000_users_by_2000_items_is_batched() -> None:
    generator = torch.Generator().manual_seed(0)
    users_vectors = torch.randn(1000, 32, generator=generator)
    items_vectors = torch.randn(2000, 32, generator=generator)
    rng = np.random.default_rng(0)
    seen = (np.repeat(np.arange(1000), 50), rng.integers(0, 2000, 50_000))
    held_out = (np.arange(1000), rng.integers(0, 2000, 1000))
    got = full_ranking(
        lambda users: users_vectors[users] @ items_vectors.T, seen, held_out, 2000, k=10
    )
    assert got["users"] == 1000 and 0.0 <= got["hr@10"] <= 0.05  # random vectors: ~10/2000
