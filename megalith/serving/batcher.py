"""Dynamic batching: concurrent requests' rows run as one forward pass.

One worker takes requests off a queue and predicts in a single background thread (the model
runs outside the event loop, which keeps accepting requests meanwhile). A batch is whatever is
queued when the worker is free, up to `max_batch_size` rows: under load the requests that
arrived during one forward pass form the next, so batches grow with concurrency and nothing
waits when a request is alone. `max_wait_ms` lets a batch that already holds several requests
wait that long for stragglers (0 by default: never wait).

Rows are plain Python objects (the server's: one dict per row) and answers are one per row,
so that joining a batch and handing each caller its part are list operations; whatever is
costly per batch (building a DataFrame, encoding, the forward pass) happens once, in the
worker thread. Each caller gets its own rows' answers back. A batch that fails with a
DataError (a bad image in one request) is run again request by request, so only the bad
request fails.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from megalith.errors import DataError

Row = TypeVar("Row")
Answer = TypeVar("Answer")


class QueueFull(Exception):
    """More requests are waiting than the server accepts; the caller gets a 503."""


@dataclass
class _Pending(Generic[Row, Answer]):
    rows: list[Row]
    future: asyncio.Future[list[Answer]]


@dataclass
class BatchStats:
    """Counters for /metadata and the benchmark: batches run and rows in them."""

    batches: int = 0
    rows: int = 0
    requests: int = 0

    @property
    def mean_batch_rows(self) -> float:
        return self.rows / self.batches if self.batches else 0.0


class DynamicBatcher(Generic[Row, Answer]):
    """Queue requests' rows and predict them together.

    Args:
        predict: rows -> one answer per row, in order; runs in a worker thread.
        max_batch_size: most rows in one forward pass (a larger request runs alone).
        max_wait_ms: how long a batch of several requests waits for more; 0 = never.
        max_queue: most requests waiting; beyond it `submit` raises QueueFull.
        enabled: False runs each request alone (the reference in benchmarks).
    """

    def __init__(
        self,
        predict: Callable[[list[Row]], Sequence[Answer]],
        *,
        max_batch_size: int = 64,
        max_wait_ms: float = 0.0,
        max_queue: int = 1024,
        enabled: bool = True,
    ) -> None:
        self._predict = predict
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000
        self.enabled = enabled
        self.stats = BatchStats()
        self._queue: asyncio.Queue[_Pending[Row, Answer]] = asyncio.Queue(maxsize=max_queue)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="megalith-serve")
        self._worker: asyncio.Task[None] | None = None
        self._carry: _Pending[Row, Answer] | None = None
        """A request that did not fit in the last batch: the next batch starts with it."""

    def start(self) -> None:
        """Start the worker on the running event loop."""
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._work())

    async def stop(self) -> None:
        """Finish every queued request, then stop the worker and its thread."""
        if self._worker is not None:
            await self._queue.join()
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
            self._worker = None
        self._executor.shutdown(wait=True)

    async def submit(self, rows: list[Row]) -> list[Answer]:
        """The answers for `rows`, one per row, in order.

        Raises:
            QueueFull: too many requests are waiting.
            DataError: a value of this request cannot be encoded.
        """
        future: asyncio.Future[list[Answer]] = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait(_Pending(rows, future))
        except asyncio.QueueFull:
            raise QueueFull from None
        return await future

    async def _work(self) -> None:
        while True:
            batch = await self._next_batch()
            try:
                await self._run(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _next_batch(self) -> list[_Pending[Row, Answer]]:
        first = self._carry if self._carry is not None else await self._queue.get()
        self._carry = None
        batch, rows = [first], len(first.rows)
        deadline = time.perf_counter() + self.max_wait
        while self.enabled and rows < self.max_batch_size:
            try:
                item = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                left = deadline - time.perf_counter()
                if len(batch) == 1 or left <= 0:  # alone, or waited enough: go now
                    break
                try:
                    item = await asyncio.wait_for(self._queue.get(), left)
                except TimeoutError:
                    break
            if rows + len(item.rows) > self.max_batch_size:
                self._carry = item  # it starts the next batch
                break
            batch.append(item)
            rows += len(item.rows)
        return batch

    async def _run(self, batch: list[_Pending[Row, Answer]]) -> None:
        live = [item for item in batch if not item.future.done()]  # a caller may have timed out
        if not live:
            return
        loop = asyncio.get_running_loop()
        joined = [row for item in live for row in item.rows]
        try:
            predicted = await loop.run_in_executor(self._executor, self._predict, joined)
        except DataError as error:
            if len(live) == 1:
                _settle(live[0], failure=error)
                return
            for item in live:  # one bad request must not fail the others
                await self._run_alone(item)
            return
        except Exception as error:  # an unexpected failure reaches every caller (a 500)
            for item in live:
                _settle(item, failure=error)
            return
        if len(predicted) != len(joined):
            mismatch = RuntimeError(f"{len(predicted)} answers for {len(joined)} rows")
            for item in live:
                _settle(item, failure=mismatch)
            return
        self._count(len(live), len(joined))
        start = 0
        for item in live:
            _settle(item, result=list(predicted[start : start + len(item.rows)]))
            start += len(item.rows)

    async def _run_alone(self, item: _Pending[Row, Answer]) -> None:
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(self._executor, self._predict, item.rows)
        except Exception as error:
            _settle(item, failure=error)
            return
        self._count(1, len(item.rows))
        _settle(item, result=list(result))

    def _count(self, requests: int, rows: int) -> None:
        self.stats.batches += 1
        self.stats.requests += requests
        self.stats.rows += rows


def _settle(
    item: _Pending[Any, Any],
    *,
    result: list[Any] | None = None,
    failure: BaseException | None = None,
) -> None:
    if item.future.done():
        return
    if result is not None:
        item.future.set_result(result)
    elif failure is not None:
        item.future.set_exception(failure)
