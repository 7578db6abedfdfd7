"""Reference models beside every network, so that a test score can be judged: the majority class
(the train mean for a number output) and a linear model — logistic regression for a category or
binary output, ridge regression for a number — fitted on the same train split and the same
encoded inputs (see megalith.evaluate.linear_features), scored on the test split with the same
metric functions as the network.

The linear fits are held to a time budget: `BUDGET_SHARE` of the training time (at least
`MIN_BUDGET_SECONDS`; importing scikit-learn, once per process, is not counted). A first fit
on up to `FIRST_ROWS` train rows is timed; a refit then uses as many rows as the rest of the
budget affords, if that is at least twice as many. When the budget is spent before a first fit
(by earlier outputs, or building the features), the linear baseline is skipped with a note.

In eval.json, `baselines` maps each output to
    {"majority": {metric: value}, "linear": {metric: value},
     "linear_fit": {"model": ..., "features": F, "train_rows": N, "seconds": S},
     "note": "..."}
`linear` and `linear_fit` are absent when the linear model was skipped, `note` says why (or that
fewer train rows were used); a text output (language model, seq2seq) has only a `note`.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from megalith.data.specs import InputSpec, OutputSpec
from megalith.data.tensors import TensorTable
from megalith.evaluate.metrics import output_metrics

if TYPE_CHECKING:  # scikit-learn and scipy load only when baselines are fitted
    from megalith.evaluate.linear_features import LinearFeatures, Matrix

BUDGET_SHARE = 0.1
"""The linear baselines may take this share of the training time..."""
MIN_BUDGET_SECONDS = 1.0
"""...or this many seconds, whichever is more (below a second nobody waits)."""
FIRST_ROWS = 1000
"""Train rows of the first, timed, linear fit."""
MAX_DENSE_VALUES = 20_000_000
"""Rows times dense features held in memory at once (160 MB of float64)."""
MAX_ITER = 200
"""Solver iterations of logistic regression."""
LOGISTIC_C = 1.0
"""Inverse L2 strength of logistic regression (scikit-learn's default)."""
RIDGE_ALPHA = 1.0
"""L2 strength of ridge regression (scikit-learn's default)."""
_SAFETY = 1.5
"""A fit's time extrapolated from a smaller fit is multiplied by this before it is trusted."""
_FIRM_LOGIT = 20.0
"""The majority baseline of a binary output: a logit that lands on one side of any threshold."""
_TABLE_OUTPUTS = ("category", "binary", "number")


@dataclass
class Budget:
    """Seconds the baselines may spend, counted from creation or the latest `restart`."""

    seconds: float
    started: float = field(default_factory=time.perf_counter)

    def restart(self) -> None:
        self.started = time.perf_counter()

    def left(self) -> float:
        return self.seconds - (time.perf_counter() - self.started)

    def describe(self) -> str:
        return (
            f"{self.seconds:.1f} s, the larger of {BUDGET_SHARE:.0%} of the training time and "
            f"{MIN_BUDGET_SECONDS:g} s"
        )


def budget_for(train_seconds: float) -> Budget:
    """The time budget of a run that trained for `train_seconds`."""
    return Budget(max(BUDGET_SHARE * train_seconds, MIN_BUDGET_SECONDS))


def fit_baselines(
    inputs: Sequence[InputSpec],
    outputs: Sequence[OutputSpec],
    train: TensorTable,
    test: TensorTable,
    *,
    budget: Budget,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Majority and linear baselines of every output, scored on `test` (see the module doc).

    Args:
        inputs, outputs: the fitted preprocessing's specs (`Preprocessor.input_specs`, ...).
        train, test: the encoded splits, with targets.
        budget: the time the linear fits may take (`budget_for(training seconds)`).
        seed: picks the train rows when fewer than all are used.
    Returns:
        {output name: entry} in the order of `outputs`, JSON-ready.
    """
    results: dict[str, dict[str, Any]] = {}
    fitted = [spec for spec in outputs if spec.type in _TABLE_OUTPUTS]
    if fitted:  # importing scikit-learn is a one-off cost of the process, not of the baselines
        import sklearn.feature_extraction.text
        import sklearn.linear_model  # noqa: F401

        budget.restart()
    pool = _TrainPool.build(inputs, train, seed) if fitted else None
    share = pool.seconds / len(fitted) if pool else 0.0  # building the features, split evenly
    for spec in outputs:
        if spec.type not in _TABLE_OUTPUTS:
            results[spec.name] = {
                "note": f"no baselines for a {spec.type} output (language model, seq2seq or "
                "speech recognizer)"
            }
            continue
        assert pool is not None
        started = time.perf_counter()
        entry: dict[str, Any] = {
            "majority": majority_metrics(spec, train.targets[spec.name], test.targets[spec.name])
        }
        entry.update(_linear_entry(spec, pool, test, budget))
        if "linear_fit" in entry:
            seconds = time.perf_counter() - started + share
            entry["linear_fit"]["seconds"] = round(seconds, 3)
        results[spec.name] = entry
    return results


def majority_metrics(
    spec: OutputSpec, train_target: torch.Tensor, test_target: torch.Tensor
) -> dict[str, float]:
    """Test metrics of predicting, for every row, the most frequent train class (lowest index
    on a tie) or, for a number output, the train mean."""
    train_target, test_target = train_target.cpu(), test_target.cpu()
    rows = len(test_target)
    if spec.type == "category":
        counts = torch.bincount(train_target.long(), minlength=spec.num_classes).double()
        logits = torch.log(counts / counts.sum()).clamp(min=-30.0)  # argmax: the majority
        output = logits.float().expand(rows, -1).contiguous()
    elif spec.type == "binary":
        positive = float(train_target.float().mean()) > 0.5
        output = torch.full((rows,), _FIRM_LOGIT if positive else -_FIRM_LOGIT)
    else:
        output = torch.full((rows,), float(train_target.double().mean()))
    return output_metrics(spec, output, test_target)


@dataclass
class _TrainPool:
    """The train rows a linear model may use, already as a feature matrix."""

    features: LinearFeatures
    order: np.ndarray
    """A seeded permutation of the pool's train positions: the first m are a sample of m rows."""
    pool: np.ndarray
    """The sorted train positions in `matrix` (all rows, unless memory caps them)."""
    matrix: Matrix
    targets: dict[str, np.ndarray]
    train_rows: int
    seconds: float

    @classmethod
    def build(cls, inputs: Sequence[InputSpec], train: TensorTable, seed: int) -> _TrainPool:
        from megalith.evaluate.linear_features import LinearFeatures

        started = time.perf_counter()
        features = LinearFeatures(inputs)
        rows = min(len(train), max(FIRST_ROWS, MAX_DENSE_VALUES // max(features.dense_width, 1)))
        order = np.random.default_rng(seed).permutation(len(train))[:rows]
        pool = np.sort(order)
        features.fit(train, pool)
        matrix = features.transform(train, pool)
        targets = {name: t.cpu().numpy()[pool] for name, t in train.targets.items()}
        seconds = time.perf_counter() - started
        return cls(features, order, pool, matrix, targets, len(train), seconds)

    def sample(self, name: str, rows: int) -> tuple[Matrix, np.ndarray]:
        """(features, targets) of `rows` train rows; all of the pool when rows >= its size."""
        if rows >= len(self.pool):
            return self.matrix, self.targets[name]
        at = np.searchsorted(self.pool, np.sort(self.order[:rows]))
        return self.matrix[at], self.targets[name][at]


def _linear_entry(
    spec: OutputSpec, pool: _TrainPool, test: TensorTable, budget: Budget
) -> dict[str, Any]:
    """{'linear': metrics, 'linear_fit': {...}, 'note': ...} or only a note when skipped."""
    if budget.left() <= 0:
        return {"note": f"linear baseline skipped: its time budget ({budget.describe()}) is spent"}
    y = pool.targets[spec.name]
    if spec.type != "number" and len(np.unique(y)) < 2:
        return {"note": "linear baseline skipped: the train rows hold a single class"}
    model, rows, notes = _fit_within(spec, pool, budget)
    if model is None:
        return {"note": f"linear baseline skipped: {notes[0]}"}
    output = _predict(spec, model, pool.features, test)
    entry: dict[str, Any] = {
        "linear": output_metrics(spec, output, test.targets[spec.name].cpu()),
        "linear_fit": {
            "model": "ridge regression" if spec.type == "number" else "logistic regression",
            "features": pool.features.width,
            "train_rows": rows,
        },
    }
    if rows < pool.train_rows:
        cause = (
            f"the time budget ({budget.describe()})"
            if rows < len(pool.pool)
            else f"memory (at most {MAX_DENSE_VALUES:,} feature values)"
        )
        notes.insert(
            0, f"linear baseline fitted on {rows:,} of {pool.train_rows:,} train rows: {cause}"
        )
    if notes:
        entry["note"] = "; ".join(notes)
    return entry


def _fit_within(spec: OutputSpec, pool: _TrainPool, budget: Budget) -> tuple[Any, int, list[str]]:
    """(fitted model or None, train rows used, notes): a timed first fit, then one on as many
    rows as the remaining budget affords, repeated while it grows the rows at least twofold."""
    rows, model, used, notes = min(FIRST_ROWS, len(pool.pool)), None, 0, []
    while True:
        x, y = pool.sample(spec.name, rows)
        if spec.type != "number" and len(np.unique(y)) < 2:
            break  # a small sample of a rare class; keep the last model
        started = time.perf_counter()
        fitted, converged = _fit(spec, x, y)
        elapsed = time.perf_counter() - started
        model, used = fitted, rows
        notes = [] if converged else [f"the solver stopped after {MAX_ITER} iterations"]
        more = affordable_rows(rows, elapsed, budget.left(), len(pool.pool))
        if more is None:
            break
        rows = more
    if model is None:
        notes = ["the sampled train rows hold a single class"]
    return model, used, notes


def affordable_rows(rows: int, seconds: float, left: float, limit: int) -> int | None:
    """Train rows for the next fit, after one on `rows` rows took `seconds`: as many as `left`
    seconds afford at that pace (with a safety factor), at most `limit`; None when no refit is
    worth it (all `limit` rows used, or fewer than twice `rows` affordable)."""
    if rows >= limit:
        return None
    afford = min(limit, int(rows * left / (max(seconds, 1e-3) * _SAFETY)))
    return afford if afford >= min(2 * rows, limit) else None


def _fit(spec: OutputSpec, x: Matrix, y: np.ndarray) -> tuple[Any, bool]:
    """(fitted scikit-learn model, whether the solver converged)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression, Ridge

    model: Any = (
        Ridge(alpha=RIDGE_ALPHA)
        if spec.type == "number"
        else LogisticRegression(C=LOGISTIC_C, max_iter=MAX_ITER)
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(x, y)
    return model, not any(issubclass(w.category, ConvergenceWarning) for w in caught)


def _predict(
    spec: OutputSpec, model: Any, features: LinearFeatures, test: TensorTable
) -> torch.Tensor:
    """The model's test predictions in the form the network gives them: category logits
    (N, K), a binary logit (N,), a standardised number (N,)."""
    chunk = max(1, MAX_DENSE_VALUES // max(features.dense_width, 1))
    parts = []
    for start in range(0, len(test), chunk):
        x = features.transform(test, np.arange(start, min(start + chunk, len(test))))
        parts.append(_as_network_output(spec, model, x))
    return torch.from_numpy(np.concatenate(parts)).float()


def _as_network_output(spec: OutputSpec, model: Any, x: Matrix) -> np.ndarray:
    if spec.type == "number":
        return np.asarray(model.predict(x), dtype=np.float64)
    probabilities = np.clip(model.predict_proba(x), 1e-12, 1.0)
    classes = model.classes_.astype(np.int64)
    if spec.type == "binary":
        positive = probabilities[:, list(classes).index(1)]
        return np.log(positive) - np.log1p(-np.minimum(positive, 1 - 1e-12))  # the logit
    full = np.full((x.shape[0], spec.num_classes), 1e-12)
    full[:, classes] = probabilities  # classes absent from the train rows keep ~0
    return np.log(full)


def baseline_columns(scores: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """eval.json's baselines as {'majority': {metric: value}, 'linear': {...}}, the metric names
    prefixed by the output as the network's are (`price/mae` with several outputs); empty
    when the run has no baselines."""
    baselines: Mapping[str, Any] = scores.get("baselines") or {}
    columns: dict[str, dict[str, float]] = {"majority": {}, "linear": {}}
    for output, entry in baselines.items():
        prefix = f"{output}/" if len(baselines) > 1 else ""
        for kind, values in columns.items():
            values.update({prefix + name: v for name, v in (entry.get(kind) or {}).items()})
    return {kind: values for kind, values in columns.items() if values}


BASELINES_NOT_PRIVATE = (
    "the baselines are not private: fitted on the same private train rows without DP-SGD, so "
    "epsilon does not cover them (set train.baselines: false to leave them out)"
)


def baseline_heading(kind: str, scores: Mapping[str, Any]) -> str:
    """A baseline's column heading: '<kind> (test)', and 'not private' in a private run."""
    return f"{kind} (test, not private)" if scores.get("privacy") else f"{kind} (test)"
