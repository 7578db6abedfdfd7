"""Cutting a batch's text ids to the columns its rows use."""

from __future__ import annotations

import numpy as np

from megalith.serving.forward import used_length


def test_used_length_is_the_longest_rows_last_token() -> None:
    ids = np.array([[5, 3, 0, 0, 0], [2, 0, 0, 0, 0], [7, 1, 4, 0, 0]])
    assert used_length(ids) == 3
    assert used_length(ids[:2]) == 2


def test_a_token_inside_padding_and_full_or_empty_batches() -> None:
    assert used_length(np.array([[0, 0, 9, 0]])) == 3  # keeps everything up to a late token
    assert used_length(np.ones((2, 4), dtype=np.int64)) == 4
    assert used_length(np.zeros((3, 4), dtype=np.int64)) == 1  # empty texts keep one column
