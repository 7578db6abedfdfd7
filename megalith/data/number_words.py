"""The `builtin:number_words` table: numbers written as digits and as English words (a small
translation task that needs no download)."""

from __future__ import annotations

import numpy as np
import pandas as pd

_ONES = (
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
)
_TENS = (
    "_",
    "_",
    "twenty",
    "thirty",
    "forty",
    "fifty",
    "sixty",
    "seventy",
    "eighty",
    "ninety",
)


def number_in_words(n: int) -> str:
    """English words for 0 <= n < 1,000,000: 4218 -> 'four thousand two hundred eighteen'."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if n < 1000:
        rest = "" if n % 100 == 0 else " " + number_in_words(n % 100)
        return f"{_ONES[n // 100]} hundred{rest}"
    rest = "" if n % 1000 == 0 else " " + number_in_words(n % 1000)
    return f"{number_in_words(n // 1000)} thousand{rest}"


def number_words_table() -> pd.DataFrame:
    """6,000 distinct numbers below 1,000,000 (seeded), as digits and as English words."""
    rng = np.random.default_rng(0)
    numbers = rng.choice(1_000_000, size=6000, replace=False)
    return pd.DataFrame(
        {"number": [str(n) for n in numbers], "words": [number_in_words(int(n)) for n in numbers]}
    )
