"""Membership-inference attacks on synthetic scores: they find a gap when there is one."""

from __future__ import annotations

import numpy as np
import pytest

from megalith.privacy.attacks import (
    attack_metrics,
    likelihood_ratio_scores,
    loss_threshold_scores,
)


def _losses(gap: float, rows: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    member = np.arange(rows) < rows // 2
    losses = rng.exponential(1.0, rows) * np.where(member, 1.0 - gap, 1.0)
    return losses, member


def test_loss_threshold_separates_memorised_rows_and_not_others() -> None:
    losses, member = _losses(gap=0.8)
    leaked = attack_metrics(loss_threshold_scores(losses), member)
    assert leaked["auc"] > 0.75 and leaked["tpr_at_1pct_fpr"] > 0.05
    losses, member = _losses(gap=0.0)
    none = attack_metrics(loss_threshold_scores(losses), member)
    assert abs(none["auc"] - 0.5) < 0.05 and none["tpr_at_1pct_fpr"] < 0.05


def test_likelihood_ratio_uses_each_class_distribution() -> None:
    # members are more confident only within class 1, whose confidences are also higher:
    # a single global threshold mixes the classes; per-class Gaussians do not
    rng = np.random.default_rng(1)
    rows = 4000
    member = rng.random(rows) < 0.5
    groups = rng.integers(0, 2, rows)
    phi = rng.normal(groups * 4.0, 1.0) + member * (groups == 1) * 1.5
    ratio = attack_metrics(likelihood_ratio_scores(phi, groups, member), member)
    threshold = attack_metrics(phi, member)
    assert ratio["auc"] > threshold["auc"] + 0.05 and ratio["auc"] > 0.65


def test_an_audit_needs_both_members_and_non_members() -> None:
    with pytest.raises(ValueError, match="both members"):
        attack_metrics(np.zeros(4), np.ones(4, bool))
