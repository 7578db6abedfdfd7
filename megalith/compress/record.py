"""The chain's bookkeeping: each model measured (megalith.compress.measure) and judged
(megalith.compress.gates) against the original and the last accepted model.

A step's speed is judged on the candidate and the last accepted model timed in turn, just then;
at the end every model is timed again in turn for the recorded latencies. Timings taken minutes
apart on a shared machine (each model once, as it is made) measured the load as much as the
models: int8 looked 39x faster than its teacher that way, and 5.6x timed in turn.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from megalith.compress.gates import Watched, judge, watched_metric
from megalith.compress.measure import (
    Measurement,
    TestRows,
    agreement,
    bundle_outputs_and_metrics,
    count_macs,
    file_mb,
    machine,
    predicted_labels,
    run_outputs_and_metrics,
    test_rows,
    time_bundle,
    time_bundles_in_turn,
)
from megalith.compress.settings import CompressSettings
from megalith.runtime.bundle import BundleFiles

if TYPE_CHECKING:
    import numpy as np

    from megalith.run import Run


class Recorder:
    """Measures the original and every step's model; remembers the last accepted one."""

    def __init__(
        self,
        run: Run,
        folder: Path,
        threads: int,
        settings: CompressSettings,
        bundles: dict[Path, Path],
    ) -> None:
        self.run, self.folder, self.threads = run, folder, threads
        self.settings, self.bundles = settings, bundles
        self.rows = test_rows(run)
        self.models: list[Measurement] = []
        self.labels: np.ndarray | None = None
        self.watched: Watched | None = None
        self.accepted: Measurement | None = None
        self.timed: dict[str, tuple[Path, Sequence[np.ndarray]]] = {}
        """Each measured model's bundle and the test arrays it is timed on, by name."""

    def measure_original(self, bundle: Path) -> None:
        """The original run, timed through its fp32 bundle (the baseline)."""
        self.bundles[self.run.path] = bundle
        outputs, metrics = run_outputs_and_metrics(self.run, self.rows)
        self.labels = predicted_labels(self.run, outputs)
        self.watched = watched_metric(self.run, metrics, self.settings.watch)
        original = self._run_measurement("original", self.run, self.rows, bundle, metrics)
        original.latency_ms = self._time(bundle, self.rows)
        self.timed["original"] = (bundle, self.rows.arrays)
        original.path = str(self.run.path)
        original.agreement = 1.0 if self.labels is not None else None
        original.verdict = {"accepted": True, "reasons": [], "note": "the starting point"}
        self.models.append(original)
        self.accepted = original

    def measure_step(self, name: str, result: Run | Path) -> bool:
        """Measure and judge a step's model; True when the gates accept it."""
        assert self.accepted is not None and self.watched is not None
        previous = self.accepted
        if isinstance(result, Path):
            measurement = self._bundle_measurement(name, result, previous)
            self.timed[name] = (result, self.rows.arrays)
        else:
            rows = test_rows(result)
            bundle = result.export(result.path / "bundle")
            self.bundles[result.path] = bundle
            outputs, metrics = run_outputs_and_metrics(result, rows)
            measurement = self._run_measurement(name, result, rows, bundle, metrics)
            measurement.agreement = agreement(predicted_labels(result, outputs), self.labels)
            self.timed[name] = (bundle, rows.arrays)
        before, measurement.latency_ms = self._time_in_turn([previous.name, name])
        measurement.verdict = judge(
            measurement,
            replace(previous, latency_ms=before),
            self.models[0],
            self.watched,
            max_metric_drop=self.settings.max_metric_drop,
            min_speedup=self.settings.min_speedup,
        )
        self.models.append(measurement)
        accepted = bool(measurement.verdict["accepted"])
        if accepted or self.settings.force:
            measurement.verdict["taken_forward"] = True
            self.accepted = measurement
        return accepted

    def _run_measurement(
        self, name: str, run: Run, rows: TestRows, bundle: Path, metrics: dict[str, float]
    ) -> Measurement:
        return Measurement(
            name=name,
            kind="run",
            path=self._relative(run.path),
            bundle=self._relative(bundle),
            parameters=sum(p.numel() for p in run.model.parameters()),
            size_mb=file_mb(run.path / "model.safetensors"),
            bundle_mb=file_mb(BundleFiles(bundle).model),
            macs=count_macs(run, rows),
            macs_note="torch FLOP counter / 2, one row",
            latency_ms={},  # timed by the caller
            metrics=metrics,
        )

    def _bundle_measurement(self, name: str, bundle: Path, source: Measurement) -> Measurement:
        import json

        description = json.loads(BundleFiles(bundle).description.read_text(encoding="utf-8"))
        outputs, metrics = bundle_outputs_and_metrics(bundle, self.run, self.rows, self.threads)
        graph_mb = file_mb(BundleFiles(bundle).model)
        return Measurement(
            name=name,
            kind="bundle",
            path=self._relative(bundle),
            bundle=self._relative(bundle),
            parameters=source.parameters,
            size_mb=graph_mb,
            bundle_mb=graph_mb,
            macs=source.macs,
            macs_note=f"carried from {source.name} (the same operations, in int8)",
            latency_ms={},  # timed in turn with the model it is judged against
            metrics=metrics,
            agreement=agreement(predicted_labels(self.run, outputs), self.labels),
            scheme=description.get("quantization", {}).get("scheme"),
        )

    def _time(self, bundle: Path, rows: TestRows) -> dict[str, float]:
        return time_bundle(
            bundle, rows.arrays, threads=self.threads, runs=self.settings.timing_runs
        )

    def _time_in_turn(self, names: list[str]) -> list[dict[str, float]]:
        return time_bundles_in_turn(
            [self.timed[name] for name in names],
            threads=self.threads,
            runs=self.settings.timing_runs,
        )

    def retime_in_turn(self) -> None:
        """Every model's latency_ms timed again, all in turn (the figures compression.json
        keeps); the verdicts keep the speed-ups measured when each step was judged."""
        latencies = self._time_in_turn([model.name for model in self.models])
        for model, latency in zip(self.models, latencies, strict=True):
            model.latency_ms = latency

    def _relative(self, path: Path) -> str:
        """A path inside the chain's folder as it will be named inside OUT."""
        if path.is_relative_to(self.folder):
            return os.path.relpath(path, self.folder)
        return str(path)

    def summary(self, target: Path, steps: list[str]) -> dict[str, Any]:
        """compression.json's contents."""
        assert self.watched is not None and self.accepted is not None
        return {
            "run": str(self.run.path),
            "output": str(target),
            "steps": steps,
            "settings": self.settings.model_dump(mode="json"),
            "watched": {
                "metric": self.watched.metric,
                "why": self.watched.why,
                "higher_is_better": self.watched.higher_is_better,
                "unit": "points = 0.01 of the metric",
            },
            "timing": {
                "threads": self.threads,
                "runs": self.settings.timing_runs,
                "statistic": "median ms after 5 warm-up runs; every model timed again at the "
                "end, in turn (5 rounds of runs / 5 calls each: the median of the round "
                "medians); a verdict's speed-up is its step and the previous model timed in turn",
                "rows": "test split",
                "engine": "ONNX Runtime, CPU",
            },
            "machine": machine(),
            "baseline": "original-fp32",
            "best": self.accepted.name,
            "models": [model.as_json() for model in self.models],
        }
