"""Micro-batching: requests that arrive together are predicted in one call, off the event loop.

A request hands its items to `MicroBatcher.submit` and awaits its results. A collector task waits
for a free worker, takes the first waiting request, then keeps adding whole requests until the
batch holds `max_batch` items or `max_wait` seconds have passed since that first request arrived,
and hands the concatenated items to `predict` in a worker thread (inference never blocks the event
loop). With `workers` > 1, batches run side by side, each on its own cores: a batch collected while
other workers are idle is split between them (whole requests, about as many items each), so
clients that all wait at once (a closed loop) keep every worker busy instead of one. Given a `size`
(of an item: a text's length), the split first orders the requests by their largest item, so each
part holds similar lengths and pads less (a long text goes with the long ones). A request larger than
`max_batch` is a batch of its own. If `predict` raises, every request of that batch gets the
exception and the next batch runs as usual.
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
    arrived: float  # event-loop time of submit: the batch it opens waits at most max_wait from then


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
    """Collects concurrent requests into batches of at most `max_batch` items for `predict`, run by `workers`
    threads (`predict` must then be safe to call from several threads at once)."""

    def __init__(self, predict: Callable[[list[T]], list[R]], max_batch: int = 64, max_wait: float = 0.005,
                 workers: int = 1, size: Callable[[T], int] | None = None):
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.predict, self.max_batch, self.max_wait, self.workers = predict, max_batch, max_wait, workers
        self.size = size
        self.stats = BatchStats()
        self.queue: asyncio.Queue[Waiting[T, R]] | None = None
        self.free: asyncio.Semaphore | None = None  # one permit per idle worker
        self.idle = workers  # permits not taken: the collector takes one per batch, run() gives it back
        self.gathered: list[Waiting[T, R]] = []  # requests the collector holds that no batch has started
        self.collector: asyncio.Task[None] | None = None
        self.running: set[asyncio.Task[None]] = set()
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gplinker-predict")

    def start(self) -> None:
        """Start the collector on the running event loop."""
        self.queue, self.free = asyncio.Queue(), asyncio.Semaphore(self.workers)
        self.collector = asyncio.get_running_loop().create_task(self.collect())

    async def stop(self) -> None:
        """Let the batches in progress finish, cancel the collector, release the worker threads. Requests not yet
        in a batch (uvicorn answers every request before it stops the app, so normally none) get an error."""
        if self.collector is not None:
            self.collector.cancel()
            try:
                await self.collector
            except asyncio.CancelledError:
                pass
        left = list(self.gathered)
        while self.queue is not None and not self.queue.empty():
            left.append(self.queue.get_nowait())
        for waiting in left:
            if not waiting.future.done():
                waiting.future.set_exception(RuntimeError("the server stopped before this request was predicted"))
        if self.running:
            await asyncio.gather(*self.running, return_exceptions=True)
        self.pool.shutdown(wait=True)

    async def submit(self, items: Sequence[T]) -> list[R]:
        """The results of `items`, in order, once the batch holding them has run."""
        if self.queue is None:
            raise RuntimeError("MicroBatcher.start() was not called")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[R]] = loop.create_future()
        await self.queue.put(Waiting(items, future, loop.time()))
        return await future

    async def collect(self) -> None:
        """Forever: wait for a free worker, gather one batch of waiting requests, start it."""
        assert self.queue is not None and self.free is not None
        loop = asyncio.get_running_loop()
        carried: Waiting[T, R] | None = None  # a request that would have overflowed the last batch: it opens the next
        while True:
            await self.take_worker()
            first = carried if carried is not None else await self.queue.get()
            carried = None
            batch, size = [first], len(first.items)
            self.gathered = batch  # what stop() must answer if it cancels this collection
            deadline = first.arrived + self.max_wait
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
                    carried = nxt
                    break
                batch.append(nxt)
                size += len(nxt.items)
            parts = split(batch, min(1 + self.idle, len(batch)), self.size)
            for part in parts:
                if part is not parts[0]:
                    await self.take_worker()  # an idle worker's: no wait
                task = loop.create_task(self.run(part))
                self.running.add(task)
                task.add_done_callback(self.running.discard)
            self.gathered = [carried] if carried is not None else []

    async def take_worker(self) -> None:
        """Wait for a free worker and take it."""
        assert self.free is not None
        await self.free.acquire()
        self.idle -= 1

    async def run(self, batch: list[Waiting[T, R]]) -> None:
        """Predict the batch's items in a worker thread and hand each request its share; frees the worker."""
        assert self.free is not None
        items = [item for waiting in batch for item in waiting.items]
        self.stats.add(len(items))
        try:
            results = await asyncio.get_running_loop().run_in_executor(self.pool, self.predict, items)
            if len(results) != len(items):
                raise RuntimeError(f"predict returned {len(results)} results for {len(items)} items")
        except Exception as exc:  # noqa: BLE001 - every waiting request gets the error; serving goes on
            for waiting in batch:
                if not waiting.future.done():
                    waiting.future.set_exception(exc)
            return
        finally:
            self.idle += 1
            self.free.release()
        offset = 0
        for waiting in batch:
            n = len(waiting.items)
            if not waiting.future.done():  # a client that went away cancelled its future
                waiting.future.set_result(results[offset : offset + n])
            offset += n


def split(batch: list[Waiting[T, R]], parts: int,
          size: Callable[[T], int] | None = None) -> list[list[Waiting[T, R]]]:
    """`batch` in at most `parts` consecutive runs of whole requests, about as many items each: a request opens
    the next run when more than half of it lies past the current run's share (fewer runs when it is small).
    With `size`, the runs are cut from the requests ordered by their largest item (stable), not by arrival."""
    if size is not None and parts > 1:
        batch = sorted(batch, key=lambda w: max(map(size, w.items), default=0))
    total = sum(len(w.items) for w in batch)
    out: list[list[Waiting[T, R]]] = [[]]
    taken = 0
    for waiting in batch:
        share = len(out) * total / parts  # where the current run should end
        if out[-1] and len(out) < parts and taken + len(waiting.items) / 2 > share:
            out.append([])
        out[-1].append(waiting)
        taken += len(waiting.items)
    return out
