"""megalith.runtime.sampling: picking tokens, and the text a stream of ids shows."""

from __future__ import annotations

import numpy as np

from megalith.runtime.sampling import complete_text, next_token

SNOWMAN = list("☃".encode())  # three bytes: a byte-level token may hold one or two of them


def decode_bytes(ids: list[int]) -> str:
    return bytes(ids).decode("utf-8", errors="replace")


def test_complete_text_leaves_out_a_trailing_incomplete_character() -> None:
    ids = [*b"hi ", *SNOWMAN, *b"!"]
    assert complete_text(decode_bytes, ids) == "hi ☃!"
    assert complete_text(decode_bytes, ids[:5]) == "hi "  # the snowman's first two bytes
    assert complete_text(decode_bytes, SNOWMAN[:1]) == ""
    assert complete_text(decode_bytes, []) == ""


def test_next_token_is_the_most_likely_at_temperature_zero() -> None:
    logits = np.array([0.1, 2.0, -1.0, 1.9])
    rng = np.random.default_rng(0)
    assert next_token(logits, 0.0, None, rng) == 1
    sampled = {next_token(logits, 1.0, 2, rng) for _ in range(50)}
    assert sampled == {1, 3}  # top-k 2: only the two most likely
