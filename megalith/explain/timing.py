"""Where an explanation's time goes: seconds per part (attribution, each trust check, writing),
summed over the passes, for summary.json's `seconds_by_part` and benchmarks/explain_speed.py."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


class PartTimes:
    """Seconds spent in each named part; `with times.part("deletion"): ...` adds to it."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def part(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            spent = time.perf_counter() - started
            self.seconds[name] = self.seconds.get(name, 0.0) + spent

    def as_json(self) -> dict[str, float]:
        """{part: seconds}, rounded to milliseconds, in the order the parts first ran."""
        return {name: round(seconds, 3) for name, seconds in self.seconds.items()}
