"""The gates a compression step must pass to be taken forward: it may cost at most
`max_metric_drop` points of the watched metric (against the original), and it must be faster
than the model it started from (the last accepted one) at every timed batch size.

A *point* is 0.01 of the metric in its own unit: for accuracy, F1 or R2 (fractions) one
percentage point; for a metric that is better lower (MSE, MAE in the target's units), a rise of
0.01. Only `Measurement`s are read here, so tests can judge made-up figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from megalith.compress.measure import Measurement
from megalith.errors import ConfigError
from megalith.evaluate.metrics import higher_is_better

if TYPE_CHECKING:
    from megalith.run import Run

POINT = 0.01
MAIN_METRIC = {"category": "accuracy", "binary": "accuracy", "number": "r2"}
"""The first output's metric the gate watches when the run does not say."""


@dataclass(frozen=True)
class Watched:
    """The test metric the metric gate reads, which way is better, and why it was chosen."""

    metric: str
    higher_is_better: bool
    why: str


def watched_metric(run: Run, metrics: dict[str, float], watch: str | None = None) -> Watched:
    """The metric to gate on: `watch` when given; else the one train.early_stop watched, read
    on the test split (val/macro_f1 -> macro_f1), unless that is the loss, whose scale has no
    fixed meaning; else the first output's main metric (accuracy; r2 for a number).

    Raises:
        ConfigError: `watch` is not one of the metrics measured on the test split.
    """
    if watch is not None:
        name = watch.removeprefix("test/")
        if name not in metrics:
            raise ConfigError(
                f"--watch {watch}: not a test metric of this run; choose one of "
                f"{', '.join(sorted(metrics))}"
            )
        return Watched(name, higher_is_better(name), "asked for (--watch)")
    early_stop = run.config.train.early_stop
    if early_stop is not None:
        name = early_stop.metric.split("/", 1)[-1]
        if name in metrics and not name.endswith("loss"):
            return Watched(name, higher_is_better(name), f"train.early_stop watched val/{name}")
    spec = run.preprocessor.output_specs[0]
    name = MAIN_METRIC.get(spec.type, "loss")
    if len(run.preprocessor.output_specs) > 1:
        name = f"{spec.name}/{name}"
    if name not in metrics:
        name = "loss"
    return Watched(name, higher_is_better(name), f"the main metric of output '{spec.name}'")


def metric_drop(original: float, candidate: float, watched: Watched) -> float:
    """How many points (0.01) the candidate is worse than the original (negative: better)."""
    worse = original - candidate if watched.higher_is_better else candidate - original
    return worse / POINT


def judge(
    candidate: Measurement,
    previous: Measurement,
    original: Measurement,
    watched: Watched,
    *,
    max_metric_drop: float,
    min_speedup: float,
) -> dict[str, Any]:
    """The verdict on one step: {"accepted", "reasons" (why it was rejected, with figures),
    "metric_drop_points", "speedup" by batch size against `previous`}."""
    reasons = []
    drop = metric_drop(original.metrics[watched.metric], candidate.metrics[watched.metric], watched)
    if not drop <= max_metric_drop:  # a NaN metric fails too
        reasons.append(
            f"{watched.metric} {candidate.metrics[watched.metric]:.4f} is {drop:.2f} points "
            f"below the original's {original.metrics[watched.metric]:.4f} "
            f"(max_metric_drop {max_metric_drop:g})"
        )
    speedup = {}
    for size, before in previous.latency_ms.items():
        after = candidate.latency_ms[size]
        speedup[size] = before / after if after > 0 else float("inf")
        if not speedup[size] >= min_speedup:
            reasons.append(
                f"not faster at batch {size}: {after:.3f} ms vs {before:.3f} ms for "
                f"{previous.name} ({speedup[size]:.3f}x, needs {min_speedup:g}x)"
            )
    return {
        "accepted": not reasons,
        "reasons": reasons,
        "metric": watched.metric,
        "metric_drop_points": round(drop, 4),
        "speedup_vs_previous": {size: round(value, 4) for size, value in speedup.items()},
        "previous": previous.name,
    }
