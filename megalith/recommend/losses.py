"""Negative sampling and the implicit-feedback losses: BCE over sampled negatives, BPR, and
in-batch sampled softmax with the log-frequency (logQ) correction."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from megalith.models.recommenders import Recommender
from megalith.recommend.settings import RecommendConfig


class NegativeSampler:
    """Items drawn uniformly, or in proportion to their train interactions (`popularity`).

    Sampled negatives are not checked against the user's history: with a catalogue of
    thousands a sampled item is rarely a positive, and the check would cost a lookup per draw.
    """

    def __init__(self, counts: torch.Tensor, mode: str, generator: torch.Generator) -> None:
        self.n_items = len(counts)
        self.weights = counts.double() + 1e-3 if mode == "popularity" else None
        self.generator = generator

    def sample(self, rows: int, per_row: int) -> torch.Tensor:
        """int64 (rows, per_row)."""
        if self.weights is None:
            return torch.randint(0, self.n_items, (rows, per_row), generator=self.generator)
        flat = torch.multinomial(self.weights, rows * per_row, True, generator=self.generator)
        return flat.view(rows, per_row)


def implicit_loss(
    model: Recommender,
    users: torch.Tensor,
    items: torch.Tensor,
    config: RecommendConfig,
    sampler: NegativeSampler,
    log_q: torch.Tensor,
) -> torch.Tensor:
    """The loss of a batch of positive (user, item) pairs, users / items int64 (B,).

    Args:
        log_q: (n_items,) log of each item's share of train interactions: how often the
            in-batch softmax meets it as a negative, subtracted from its logit (logQ).
    """
    if config.loss == "softmax":
        logits = model.score_matrix(users, items) - log_q[items]  # (B, B), row i: user i
        same = items[None, :] == items[:, None]
        same.fill_diagonal_(False)  # the same item elsewhere in the batch is not a negative
        logits = logits.masked_fill(same, torch.finfo(logits.dtype).min)
        return F.cross_entropy(logits, torch.arange(len(users)))
    negatives = sampler.sample(len(users), config.negatives)  # (B, n)
    scores = model.score_matrix_pairs(users, torch.cat([items[:, None], negatives], dim=1))
    positive, negative = scores[:, :1], scores[:, 1:]  # (B, 1), (B, n)
    if config.loss == "bpr":
        return -F.logsigmoid(positive - negative).mean()
    labels = torch.zeros_like(scores)
    labels[:, 0] = 1.0
    return F.binary_cross_entropy_with_logits(scores, labels)
