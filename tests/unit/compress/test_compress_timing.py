"""Bundles timed in turn: every round times each bundle once, so a change of load during the
timing weighs on all of them alike; the figure is the median of the round medians."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest

from megalith.compress.measure import time_bundles_in_turn


class FakeTimer:
    """Stands in for an ONNX Runtime session: each call returns the next figure of its bundle
    and records the order in which bundles were timed."""

    order: list[str] = []
    figures = {"a": [10.0, 30.0, 20.0], "b": [1.0, 3.0, 100.0]}

    def __init__(self, bundle: Path, arrays: Any, threads: int) -> None:
        self.name, self.calls = bundle.name, 0

    def median_ms(self, runs: int) -> dict[str, float]:
        assert runs == 4  # 12 runs over 3 rounds
        FakeTimer.order.append(self.name)
        figure = FakeTimer.figures[self.name][self.calls]
        self.calls += 1
        return {"1": figure, "32": 2 * figure}


def test_bundles_are_timed_in_turn_and_the_median_round_is_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    measure = importlib.import_module("megalith.compress.measure")  # mg.compress is a function
    monkeypatch.setattr(measure, "BundleTimer", FakeTimer)
    FakeTimer.order = []
    found = time_bundles_in_turn([(Path("a"), []), (Path("b"), [])], threads=1, runs=12, rounds=3)
    assert FakeTimer.order == ["a", "b", "a", "b", "a", "b"]
    assert found == [{"1": 20.0, "32": 40.0}, {"1": 3.0, "32": 6.0}]
