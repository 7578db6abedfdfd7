"""Decision thresholds for binary outputs: `threshold: auto` picks the one with the best F1.

On imbalanced data a model's probabilities rarely cross 0.5 for the rare value, so a fixed 0.5
predicts the majority for nearly every row. The threshold that maximises F1 on held-out rows is
the usual remedy (see e.g. Lipton et al., "Thresholding classifiers to maximize F1", 2014).
"""

from __future__ import annotations

import numpy as np

_EDGE = 1e-6


def best_f1_threshold(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The threshold t whose decisions `probability > t` give the highest F1 on these rows.

    Every distinct probability is a candidate cut; t sits halfway between the lowest
    probability predicted positive and the next lower one, so it separates the same rows on
    data like this. Ties in F1 go to the higher threshold (fewer false positives).

    Args:
        probabilities: (N,) float probabilities of the positive value, in [0, 1].
        labels: (N,) 0 / 1 truth.
    Returns:
        A threshold in (0, 1); 0.5 when the rows hold no positive (F1 is 0 everywhere).
    """
    probabilities = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    labels = np.asarray(labels).reshape(-1).astype(bool)
    positives = int(labels.sum())
    if positives == 0 or len(labels) == 0:
        return 0.5
    truth = labels[np.argsort(-probabilities, kind="stable")]  # highest score first
    true_positives = np.concatenate([[0], np.cumsum(truth)])  # among the k highest scores
    distinct = np.unique(probabilities)  # ascending
    cuts = np.concatenate([[distinct[-1] + 1], (distinct[1:] + distinct[:-1])[::-1] / 2, [-1]])
    cuts = np.clip(cuts, _EDGE, 1 - _EDGE)  # a threshold lies in (0, 1): highest first
    ascending = np.sort(probabilities)
    predicted = len(ascending) - np.searchsorted(ascending, cuts, side="right")  # rows above
    f1 = 2 * true_positives[predicted] / (predicted + positives)
    return float(cuts[int(np.argmax(f1))])  # the first best: the highest such threshold
