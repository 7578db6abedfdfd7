"""Ranking metrics: HR@K, NDCG@K, Recall@K, MRR and catalogue coverage@K, by full ranking over
every item a user has not interacted with, and by the sampled protocol (each held-out item
among a fixed set of sampled negatives, as in He et al. 2017, Neural Collaborative Filtering).

Full ranking is batched over users (one (B, n_items) score matrix per batch, no per-user Python
loop). Items with equal scores are ranked pessimistically in the sampled protocol (a negative
that ties with the held-out item ranks above it), so a constant scorer earns nothing.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

ScoreAll = Callable[[torch.Tensor], torch.Tensor]
"""users (B,) int64 -> scores of every item (B, n_items), higher = recommended first."""
ScorePairs = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""users (P,), items (P, C) int64 -> scores (P, C)."""


def full_ranking(
    score_all: ScoreAll,
    seen: tuple[np.ndarray, np.ndarray],
    held_out: tuple[np.ndarray, np.ndarray],
    n_items: int,
    k: int,
    batch_users: int = 256,
) -> dict[str, float]:
    """Metrics over every user with held-out items, ranking all the items they have not seen.

    Args:
        score_all: the recommender's scores for a batch of users.
        seen: (users, items) int arrays of the interactions to exclude (train, and val when
            scoring test); they can never be recommended.
        held_out: (users, items) the relevant items: hits.
        n_items: the catalogue size.
        k: the cut-off.

    Returns:
        hr@K (share of users with a held-out item in their top K), ndcg@K (DCG of the top K
        over the ideal DCG), recall@K (held-out items in the top K / held-out items), mrr (1 /
        rank of the best-ranked held-out item, over the whole ranking), coverage@K (share of
        the catalogue in anyone's top K), and users (how many were scored).
    """
    eval_users = np.unique(held_out[0])
    k = min(k, n_items)
    totals = {"hr": 0.0, "ndcg": 0.0, "recall": 0.0, "mrr": 0.0}
    recommended = torch.zeros(n_items, dtype=torch.bool)
    discount = 1.0 / torch.log2(torch.arange(2, k + 2, dtype=torch.float64))
    for start in range(0, len(eval_users), batch_users):
        batch = eval_users[start : start + batch_users]
        scores = score_all(torch.as_tensor(batch, dtype=torch.long)).detach().double().clone()
        relevant = torch.zeros_like(scores, dtype=torch.bool)
        rows, cols = _pairs_in(held_out, batch)
        relevant[rows, cols] = True
        seen_rows, seen_cols = _pairs_in(seen, batch)
        scores[seen_rows, seen_cols] = -torch.inf
        scores[relevant] = torch.where(
            torch.isfinite(scores[relevant]), scores[relevant], torch.finfo(torch.float64).min
        )
        top = scores.topk(k, dim=1).indices  # (B, K)
        recommended[top.flatten()] = True
        hits = relevant.gather(1, top).double()  # (B, K)
        n_relevant = relevant.sum(1).double()
        ideal = torch.cumsum(discount, 0)[(n_relevant.clamp(max=k) - 1).long()]
        best = scores.masked_fill(~relevant, -torch.inf).max(1).values
        rank = (scores > best[:, None]).sum(1).double() + 1
        totals["hr"] += float((hits.sum(1) > 0).sum())
        totals["ndcg"] += float(((hits * discount).sum(1) / ideal).sum())
        totals["recall"] += float((hits.sum(1) / n_relevant).sum())
        totals["mrr"] += float((1.0 / rank).sum())
    n = max(len(eval_users), 1)
    scores_out = {f"{name}@{k}" if name != "mrr" else name: v / n for name, v in totals.items()}
    scores_out[f"coverage@{k}"] = float(recommended.double().mean())
    scores_out["users"] = float(len(eval_users))
    return scores_out


def _pairs_in(
    pairs: tuple[np.ndarray, np.ndarray], batch: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows in the batch, items) of the pairs whose user is in `batch` (sorted, unique)."""
    users, items = pairs
    inside = np.isin(users, batch)
    rows = np.searchsorted(batch, users[inside])
    return torch.as_tensor(rows), torch.as_tensor(items[inside], dtype=torch.long)


def sampled_ranking(
    score_pairs: ScorePairs,
    users: np.ndarray,
    positives: np.ndarray,
    negatives: np.ndarray,
    k: int,
    batch_rows: int = 1024,
) -> dict[str, float]:
    """The sampled protocol: each held-out item ranked among its own sampled negatives.

    Args:
        users / positives: int (P,), one row per held-out interaction.
        negatives: int (P, C), items the user never interacted with.

    Returns:
        hr@K, ndcg@K (1 / log2(rank + 2) when in the top K), mrr, averaged over the P rows;
        `rank` counts the negatives scoring at least as high as the held-out item.
    """
    totals = {"hr": 0.0, "ndcg": 0.0, "mrr": 0.0}
    for start in range(0, len(users), batch_rows):
        end = start + batch_rows
        candidates = np.concatenate([positives[start:end, None], negatives[start:end]], axis=1)
        scores = score_pairs(
            torch.as_tensor(users[start:end], dtype=torch.long),
            torch.as_tensor(candidates, dtype=torch.long),
        ).double()
        rank = (scores[:, 1:] >= scores[:, :1]).sum(1).double()  # 0 = first
        in_top = rank < k
        totals["hr"] += float(in_top.sum())
        totals["ndcg"] += float((in_top / torch.log2(rank + 2)).sum())
        totals["mrr"] += float((1.0 / (rank + 1)).sum())
    n = max(len(users), 1)
    return {
        f"hr@{k}": totals["hr"] / n,
        f"ndcg@{k}": totals["ndcg"] / n,
        "mrr": totals["mrr"] / n,
    }


def sample_eval_negatives(
    users: np.ndarray,
    interacted: tuple[np.ndarray, np.ndarray],
    n_items: int,
    count: int,
    seed: int,
) -> np.ndarray:
    """int64 (P, count): for each held-out row, `count` distinct items its user never
    interacted with (in any split), drawn uniformly with `seed`.

    Users who interacted with nearly the whole catalogue get repeats only when fewer than
    `count` items are left to them.
    """
    rng = np.random.default_rng(seed)
    known: dict[int, set[int]] = {}
    for user, item in zip(*interacted, strict=True):
        known.setdefault(int(user), set()).add(int(item))
    rows = np.empty((len(users), count), dtype=np.int64)
    for row, user in enumerate(users):  # rejection sampling: ~count draws per row
        taken = known.get(int(user), set())
        chosen: list[int] = []
        picked: set[int] = set()
        allowed = n_items - len(taken)
        while len(chosen) < count:
            for item in rng.integers(0, n_items, size=2 * count).tolist():
                if item not in taken and (item not in picked or len(picked) >= allowed):
                    chosen.append(item)
                    picked.add(item)
                    if len(chosen) == count:
                        break
            if allowed <= 0:
                raise ValueError(f"user {user} interacted with every item: nothing to sample")
        rows[row] = chosen
    return rows
