"""Micro-batching: requests that arrive together are predicted in one call, off the event loop.

A request hands its items to `MicroBatcher.submit` and awaits its results. One collector task
takes the first waiting request, then keeps adding whole requests until the batch holds
`max_batch` items or `max_wait` seconds have passed since that first one, and runs `predict` on
the concatenated items in a single worker thread (inference never blocks the event loop; one
thread, because the model already uses every core). A request larger than `max_batch` is a batch
of its own. If `predict` raises, every request of that batch gets the exception and the next
batch runs as usual.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class Waiting(Generic[T, R]):
    """One request's items and the future its results go to."""

    items: Sequence[T]
    future: asyncio.Future[list[R]]


@dataclass
class BatchStats:
    """How many batches ran, how many items they held, and the sizes of the latest ones (for /health and tests)."""

    batches: int = 0
    items: int = 0
    recent: deque[int] = field(default_factory=lambda: deque(maxlen=1000))

    def add(self, size: int) -> None:
        self.batches += 1
        self.items += size
        self.recent.append(size)


class MicroBatcher(Generic[T, R]):
    """Collects concurrent requests into batches of at most `max_batch` items for `predict`."""

    def __init__(self, predict: Callable[[list[T]], list[R]], max_batch: int = 64, max_wait: float = 0.005):
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self.predict, self.max_batch, self.max_wait = predict, max_batch, max_wait
        self.stats = BatchStats()
        self.queue: asyncio.Queue[Waiting[T, R]] | None = None
        self.collector: asyncio.Task[None] | None = None
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gplinker-predict")

    def start(self) -> None:
        """Start the collector on the running event loop."""
        self.queue = asyncio.Queue()
        self.collector = asyncio.get_running_loop().create_task(self.collect())

    async def stop(self) -> None:
        """Finish the batch in progress, cancel the collector, release the worker thread."""
        if self.collector is not None:
            self.collector.cancel()
            try:
                await self.collector
            except asyncio.CancelledError:
                pass
        self.worker.shutdown(wait=True)

    async def submit(self, items: Sequence[T]) -> list[R]:
        """The results of `items`, in order, once the batch holding them has run."""
        if self.queue is None:
            raise RuntimeError("MicroBatcher.start() was not called")
        future: asyncio.Future[list[R]] = asyncio.get_running_loop().create_future()
        await self.queue.put(Waiting(items, future))
        return await future

    async def collect(self) -> None:
        """Forever: gather one batch of waiting requests and run it."""
        assert self.queue is not None
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.queue.get()]
            size = len(batch[0].items)
            deadline = loop.time() + self.max_wait
            while size < self.max_batch:
                if self.queue.empty():
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        nxt = await asyncio.wait_for(self.queue.get(), remaining)
                    except asyncio.TimeoutError:
                        break
                else:
                    nxt = self.queue.get_nowait()
                if size + len(nxt.items) > self.max_batch:
                    await self.run(batch, size)  # the newcomer would overflow: it opens the next batch
                    batch, size, deadline = [nxt], len(nxt.items), loop.time() + self.max_wait
                    continue
                batch.append(nxt)
                size += len(nxt.items)
            await self.run(batch, size)

    async def run(self, batch: list[Waiting[T, R]], size: int) -> None:
        """Predict the batch's items in the worker thread and hand each request its share."""
        items = [item for waiting in batch for item in waiting.items]
        self.stats.add(size)
        try:
            results = await asyncio.get_running_loop().run_in_executor(self.worker, self.predict, items)
            if len(results) != len(items):
                raise RuntimeError(f"predict returned {len(results)} results for {len(items)} items")
        except Exception as exc:  # noqa: BLE001 - every waiting request gets the error; serving goes on
            for waiting in batch:
                if not waiting.future.done():
                    waiting.future.set_exception(exc)
            return
        offset = 0
        for waiting in batch:
            n = len(waiting.items)
            if not waiting.future.done():  # a client that went away cancelled its future
                waiting.future.set_result(results[offset : offset + n])
            offset += n
