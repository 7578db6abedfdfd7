"""Permutation importance (Breiman 2001, "Random Forests", sec. 10), computed by scikit-learn's
`permutation_importance` on the same model, compared with the attributions' global importance.

A column matters to the model as much as its metric falls when that column's values are shuffled
across the rows (a few repeats, each a fresh shuffle). The metric is the explained output's:
accuracy for a category or binary output, the negative mean squared error (in the output's
units) for a number. The Spearman rank correlation between this ranking of the columns and the
attributions' (mean |attribution| per column) says whether the two views of the model agree.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    import pandas as pd

    from megalith.data.specs import OutputSpec
    from megalith.explain import Run

PERMUTATION_ROWS = 2000
"""At most this many rows of the source are shuffled (the first ones)."""
REPEATS = 5
"""Shuffles per column."""
AGREEMENT_LIMIT = 0.5
"""The rank correlation from which the two rankings are said to agree."""
SKIPPED_TYPES = ("image",)
"""Inputs too costly to encode again for every shuffle: a run with one is not compared."""


class _Model:
    """What scikit-learn's permutation_importance asks of an estimator: something the scorer
    takes. The scoring itself is `score` below."""

    def fit(self, *args: Any) -> _Model:
        return self


def permutation_comparison(
    run: Run,
    frame: pd.DataFrame,
    base_dir: Path | None,
    origin: str,
    output: OutputSpec,
    importance: dict[str, float],
) -> dict[str, Any] | None:
    """The permutation importance of each input column on the labelled rows of `frame`, and
    its rank correlation with `importance`; None when it does not apply (fewer than two
    inputs, an image input, or no labelled rows)."""
    from scipy.stats import spearmanr
    from sklearn.inspection import permutation_importance

    specs = run.preprocessor.input_specs
    columns = [spec.name for spec in specs]
    if len(columns) < 2 or any(spec.type in SKIPPED_TYPES for spec in specs):
        return None
    if output.name not in frame.columns:
        return None
    labelled = frame[frame[output.name].notna()].iloc[:PERMUTATION_ROWS]
    if len(labelled) < 2:
        return None
    index = [spec.name for spec in run.preprocessor.output_specs].index(output.name)
    decoder: Any = run.preprocessor.outputs[index]

    def score(_: _Model, rows: pd.DataFrame, truth: pd.Series) -> float:
        encoded = run.preprocessor.encode_inputs(rows, base_dir=base_dir, origin=origin)
        with torch.no_grad():
            outputs = run.model({k: torch.as_tensor(v) for k, v in encoded.items()})
        predicted = np.asarray(decoder.decode(outputs[output.name])[output.name])
        if output.type == "number":
            return -float(np.mean((predicted.astype(float) - truth.to_numpy(float)) ** 2))
        return float(np.mean(predicted.astype(str) == truth.astype(str).to_numpy()))

    found = permutation_importance(
        _Model(),
        labelled[columns],
        labelled[output.name],
        scoring=score,
        n_repeats=REPEATS,
        random_state=0,
    )
    drops = {name: float(found.importances_mean[j]) for j, name in enumerate(columns)}
    ranked = dict(sorted(drops.items(), key=lambda item: -item[1]))
    correlation = float(spearmanr([importance[c] for c in columns], [drops[c] for c in columns])[0])
    agreed = bool(np.isfinite(correlation) and correlation >= AGREEMENT_LIMIT)
    metric = "negative mean squared error" if output.type == "number" else "accuracy"
    return {
        "metric": metric,
        "rows": len(labelled),
        "repeats": REPEATS,
        "importance": ranked,
        "std": {name: float(found.importances_std[j]) for j, name in enumerate(columns)},
        "rank_correlation": correlation,
        "limit": AGREEMENT_LIMIT,
        "passed": agreed,
        "note": (
            f"the attributions rank the columns as shuffling them does (the fall of {metric})"
            if agreed
            else f"the attributions and the fall of {metric} when a column is shuffled rank the "
            "columns differently: compare the two before trusting either ranking"
        ),
    }
