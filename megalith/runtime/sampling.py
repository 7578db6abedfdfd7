"""Picking the next token from a language model's logits, in numpy."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def next_token(
    logits: np.ndarray, temperature: float, top_k: int | None, rng: np.random.Generator
) -> int:
    """One token id from logits (V,): the most likely at temperature 0, else sampled from the
    softmax of logits / temperature (among the `top_k` most likely when given)."""
    if temperature == 0:
        return int(np.argmax(logits))
    scaled = logits.astype(np.float64) / temperature
    if top_k is not None and top_k < scaled.size:
        kth = np.partition(scaled, -top_k)[-top_k]
        scaled = np.where(scaled < kth, -np.inf, scaled)
    probabilities = np.exp(scaled - scaled.max())
    probabilities /= probabilities.sum()
    return int(rng.choice(scaled.size, p=probabilities))


def complete_text(decode: Callable[[list[int]], str], ids: Sequence[int]) -> str:
    """The text of `ids` as `Run.generate` streams it: the longest start of them whose text
    does not end inside a UTF-8 character (a byte-level BPE token may hold part of one)."""
    for end in range(len(ids), 0, -1):
        text = decode(list(ids[:end]))
        if not text.endswith("\ufffd"):
            return text
    return ""
