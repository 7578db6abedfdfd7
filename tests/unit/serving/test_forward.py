"""Cutting a batch's text ids to the columns its rows use, in groups of similar length."""

from __future__ import annotations

import numpy as np

from megalith.serving.forward import length_groups, row_lengths, used_length


def test_used_length_is_the_longest_rows_last_token() -> None:
    ids = np.array([[5, 3, 0, 0, 0], [2, 0, 0, 0, 0], [7, 1, 4, 0, 0]])
    assert used_length(ids) == 3
    assert used_length(ids[:2]) == 2


def test_a_token_inside_padding_and_full_or_empty_batches() -> None:
    assert used_length(np.array([[0, 0, 9, 0]])) == 3  # keeps everything up to a late token
    assert used_length(np.ones((2, 4), dtype=np.int64)) == 4
    assert used_length(np.zeros((3, 4), dtype=np.int64)) == 1  # empty texts keep one column


def test_row_lengths_count_up_to_each_rows_last_token() -> None:
    ids = np.array([[5, 3, 0, 0], [0, 0, 0, 0], [7, 0, 4, 0]])
    assert row_lengths(ids).tolist() == [2, 0, 3]


def test_rows_split_into_groups_only_where_the_padding_saved_pays_for_a_call() -> None:
    lengths = np.array([48, 3, 5, 48, 4, 6, 2, 3])
    groups = length_groups(lengths, call_cost=32)
    assert [sorted(lengths[g].tolist()) for g in groups] == [[2, 3, 3, 4, 5, 6], [48, 48]]
    assert sorted(np.concatenate(groups).tolist()) == list(range(8))  # every row, once
    assert len(length_groups(lengths, call_cost=6 * 42)) == 1  # 6 rows x 42 tokens: not worth it
    assert [g.tolist() for g in length_groups(np.array([7]), 0)] == [[0]]


def test_a_low_call_cost_splits_further() -> None:
    lengths = np.array([1, 1, 1, 1, 10, 10, 10, 10, 40, 40])
    assert [lengths[g].tolist() for g in length_groups(lengths, call_cost=20)] == [
        [1, 1, 1, 1],
        [10, 10, 10, 10],
        [40, 40],
    ]
