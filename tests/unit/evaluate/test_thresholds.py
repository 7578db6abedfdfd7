"""`threshold: auto`: the chosen threshold gives the best F1 any threshold gives."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import f1_score

from megalith.evaluate.thresholds import best_f1_threshold


def _best_by_brute_force(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The best F1 over every cut between (and around) the distinct probabilities; a threshold
    lies in (0, 1), so rows at exactly 0 (or 1) are always negative (or positive)."""
    values = np.unique(probabilities)
    cuts = np.concatenate([[-1.0], (values[1:] + values[:-1]) / 2, [values[-1] + 1]])
    cuts = np.clip(cuts, 1e-6, 1 - 1e-6)
    return max(f1_score(labels, probabilities > cut, zero_division=0) for cut in cuts)


def test_an_imbalanced_split_gets_a_low_threshold_with_the_best_f1() -> None:
    rng = np.random.default_rng(0)
    labels = rng.random(2000) < 0.05
    probabilities = np.clip(0.03 + 0.25 * labels + rng.normal(0, 0.08, 2000), 0, 1)
    threshold = best_f1_threshold(probabilities, labels)
    assert 0.05 < threshold < 0.4
    chosen = f1_score(labels, probabilities > threshold)
    assert chosen == pytest.approx(_best_by_brute_force(probabilities, labels))
    assert chosen > f1_score(labels, probabilities > 0.5, zero_division=0) + 0.3


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.7, 0.9, 1.0]), st.booleans()),
        min_size=1,
        max_size=40,
    )
)
def test_ties_and_any_rows_reach_the_brute_force_optimum(rows: list[tuple[float, bool]]) -> None:
    probabilities = np.array([p for p, _ in rows])
    labels = np.array([y for _, y in rows])
    threshold = best_f1_threshold(probabilities, labels)
    assert 0 < threshold < 1
    if labels.any():
        chosen = f1_score(labels, probabilities > threshold, zero_division=0)
        assert chosen == pytest.approx(_best_by_brute_force(probabilities, labels))
    else:
        assert threshold == 0.5
