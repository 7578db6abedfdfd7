"""Fixed-width codes ('01067') that reach a run as numbers (a DataFrame read without dtype=str)
still find their category instead of falling silently into 'unknown'."""

from __future__ import annotations

import pandas as pd
import pytest

from megalith.data.features.category import (
    CategoryInput,
    CategoryInputEncoder,
    CategoryOutput,
    CategoryOutputEncoder,
)
from megalith.errors import DataError


def test_numbers_find_their_zero_padded_codes() -> None:
    encoder = CategoryInputEncoder(CategoryInput(name="zip", type="category"))
    encoder.fit(pd.Series(["01067", "10115", "01067", "80331"]), where="train")
    codes = encoder.encode(pd.Series([1067, "01067", 10115, 80331.0, 99999]), where="new")
    assert codes.tolist() == [1, 1, 2, 3, 0]


def test_labels_stay_strict_and_plain_numbers_are_not_codes() -> None:
    labels = CategoryOutputEncoder(CategoryOutput(name="dept", type="category"))
    labels.fit(pd.Series(["007", "010", "100", "007"]), where="train")
    with pytest.raises(DataError, match="label 7"):  # a miss there is loud, not a guess
        labels.encode(pd.Series([7]), where="eval")
    plain = CategoryInputEncoder(CategoryInput(name="size", type="category"))
    plain.fit(pd.Series(["12", "7", "300"]), where="train")  # no leading zero: not codes
    as_text = plain.encode(pd.Series(["7", "12"]), where="new").tolist()
    assert plain.encode(pd.Series([7, 12]), where="new").tolist() == as_text
    assert plain.encode(pd.Series([70]), where="new").tolist() == [0]
