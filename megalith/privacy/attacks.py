"""Membership-inference attacks on per-row scores, and how well they separate members.

Both attacks see only the trained model's outputs on a row and its label (black box):

- loss threshold (Yeom et al., "Privacy Risk in Machine Learning", CSF 2018): a row is called a
  member when its loss is low; the score is minus the loss.
- likelihood ratio without shadow models: the row's scaled confidence
  phi = log(p / (1 - p)) of its true label (minus the squared error for a number) is compared
  under two Gaussians per class, one fitted to members and one to non-members, as LiRA does
  (Carlini et al., "Membership Inference Attacks From First Principles", S&P 2022) with the
  shadow models' per-row distributions replaced by the population's per class. The Gaussians
  are fitted on one half of the audit rows and score the other half (two folds, pooled), so
  no row scores itself.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve


def loss_threshold_scores(losses: np.ndarray) -> np.ndarray:
    """Membership scores (higher: more likely a member) from per-row losses (N,)."""
    return -np.asarray(losses, dtype=np.float64)


def likelihood_ratio_scores(
    phi: np.ndarray, groups: np.ndarray, member: np.ndarray, seed: int = 0
) -> np.ndarray:
    """log N(phi; in) - log N(phi; out) per row, with class-wise Gaussians cross-fitted.

    Args:
        phi: (N,) scaled confidence of each row's true label.
        groups: (N,) the row's class (0 for a number output): one pair of Gaussians per class.
        member: (N,) bool, True for a train row; used only on the half a row is not scored in.
        seed: which rows fall in which half.
    Returns:
        (N,) scores, higher meaning more likely a member.
    """
    fold = np.random.default_rng(seed).permutation(len(phi)) % 2
    scores = np.zeros(len(phi))
    for scored in (0, 1):
        fit, score = fold != scored, fold == scored
        for group in np.unique(groups[score]):
            rows = score & (groups == group)
            fit_in = fit & member & (groups == group)
            fit_out = fit & ~member & (groups == group)
            scores[rows] = _log_normal(phi[rows], phi[fit_in]) - _log_normal(
                phi[rows], phi[fit_out]
            )
    return scores


def attack_metrics(scores: np.ndarray, member: np.ndarray) -> dict[str, float]:
    """AUC of the membership scores and the true-positive rate at 1% false positives.

    Raises:
        ValueError: there are no members or no non-members.
    """
    if member.all() or not member.any():
        raise ValueError("an audit needs both members (train rows) and non-members (test rows)")
    fpr, tpr, _ = roc_curve(member, scores)
    return {
        "auc": float(roc_auc_score(member, scores)),
        "tpr_at_1pct_fpr": float(np.interp(0.01, fpr, tpr)),
    }


def _log_normal(values: np.ndarray, sample: np.ndarray) -> np.ndarray:
    """log density of N(mean, var) fitted to `sample` (a standard one when it has < 2 rows)."""
    if len(sample) < 2:
        mean, var = 0.0, 1.0
    else:
        mean, var = float(sample.mean()), float(sample.var()) + 1e-6
    return -0.5 * (np.log(2 * np.pi * var) + (values - mean) ** 2 / var)
