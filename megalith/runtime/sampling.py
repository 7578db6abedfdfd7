"""Picking the next token from a language model's logits, in numpy."""

from __future__ import annotations

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
