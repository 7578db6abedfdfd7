"""The dynamic batcher: rows of concurrent requests run together, each caller gets its own."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from megalith.errors import DataError
from megalith.serving.batcher import DynamicBatcher, QueueFull


class Doubler:
    """A model that doubles each row, remembers the batch sizes it saw, refuses negative rows."""

    def __init__(self, delay: float = 0.0) -> None:
        self.sizes: list[int] = []
        self.delay = delay
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, rows: list[float]) -> list[float]:
        self.gate.wait(5)
        time.sleep(self.delay)
        if any(x < 0 for x in rows):
            raise DataError("data frame: column 'x' is negative")
        self.sizes.append(len(rows))
        return [2 * x for x in rows]


def _run(coroutine):  # type: ignore[no-untyped-def]
    return asyncio.run(coroutine)


def test_concurrent_requests_share_forward_passes_and_get_their_own_rows() -> None:
    model = Doubler()

    async def main() -> list[list[float]]:
        batcher = DynamicBatcher(model, max_batch_size=64)
        batcher.start()
        model.gate.clear()  # the first request holds the model while the others queue
        first = asyncio.create_task(batcher.submit([1.0]))
        await asyncio.sleep(0.05)
        requests = [[float(i), float(i) + 0.5] for i in range(10)]
        rest = [asyncio.create_task(batcher.submit(rows)) for rows in requests]
        await asyncio.sleep(0.05)
        model.gate.set()
        results = await asyncio.gather(first, *rest)
        await batcher.stop()
        return results

    results = _run(main())
    assert model.sizes == [1, 20]  # the ten queued requests ran as one batch
    assert results[0] == [2.0]
    for i, result in enumerate(results[1:]):
        assert result == [2.0 * i, 2.0 * i + 1.0]


def test_a_bad_request_fails_alone() -> None:
    model = Doubler()

    async def main() -> list[object]:
        batcher = DynamicBatcher(model, max_batch_size=64)
        batcher.start()
        model.gate.clear()
        first = asyncio.create_task(batcher.submit([0.0]))
        await asyncio.sleep(0.05)
        good = asyncio.create_task(batcher.submit([3.0]))
        bad = asyncio.create_task(batcher.submit([-1.0]))
        await asyncio.sleep(0.05)
        model.gate.set()
        results = await asyncio.gather(first, good, bad, return_exceptions=True)
        await batcher.stop()
        return results

    first, good, bad = _run(main())
    assert first == [0.0]
    assert good == [6.0]
    assert isinstance(bad, DataError) and "negative" in str(bad)


def test_a_lone_request_does_not_wait_for_company() -> None:
    model = Doubler()

    async def main() -> float:
        batcher = DynamicBatcher(model, max_batch_size=64, max_wait_ms=500)
        batcher.start()
        started = time.perf_counter()
        await batcher.submit([1.0])
        elapsed = time.perf_counter() - started
        await batcher.stop()
        return elapsed

    assert _run(main()) < 0.25  # far less than max_wait_ms: nothing else was queued


def test_batches_respect_the_row_limit_and_a_full_queue_is_refused() -> None:
    model = Doubler()

    async def main() -> tuple[list[int], bool]:
        batcher = DynamicBatcher(model, max_batch_size=5, max_queue=4)
        batcher.start()
        model.gate.clear()
        held = asyncio.create_task(batcher.submit([0.0]))
        await asyncio.sleep(0.05)
        waiting = [asyncio.create_task(batcher.submit([1.0, 2.0, 3.0])) for _ in range(4)]
        await asyncio.sleep(0.05)
        with pytest.raises(QueueFull):
            await batcher.submit([9.0])
        model.gate.set()
        await asyncio.gather(held, *waiting)
        await batcher.stop()
        return model.sizes, True

    sizes, _ = _run(main())
    assert sizes == [1, 3, 3, 3, 3]  # two 3-row requests never share a 5-row batch


def test_without_batching_every_request_runs_alone() -> None:
    model = Doubler()

    async def main() -> None:
        batcher = DynamicBatcher(model, enabled=False)
        batcher.start()
        model.gate.clear()
        tasks = [asyncio.create_task(batcher.submit([1.0])) for _ in range(5)]
        await asyncio.sleep(0.05)
        model.gate.set()
        await asyncio.gather(*tasks)
        await batcher.stop()

    _run(main())
    assert model.sizes == [1, 1, 1, 1, 1]


def test_a_model_that_loses_rows_fails_every_caller_of_the_batch() -> None:
    def drops_one(rows: list[float]) -> list[float]:
        return rows[1:]

    async def main() -> list[object]:
        batcher = DynamicBatcher(drops_one, max_batch_size=64)
        batcher.start()
        results = await asyncio.gather(
            batcher.submit([1.0, 2.0]), batcher.submit([3.0]), return_exceptions=True
        )
        await batcher.stop()
        return results

    for result in _run(main()):
        assert isinstance(result, RuntimeError) and "answers for" in str(result)
