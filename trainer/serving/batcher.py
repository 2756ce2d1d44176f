"""Dynamic batching: requests with the same decoding options that arrive within ``max_wait_s`` of the first waiting
one are decoded together, up to ``max_batch`` images, in one batched search on one model thread.

The queue is bounded (``QueueFull`` beyond ``max_queue`` waiting requests), a request whose client gave up (its
future cancelled, e.g. by the per-request timeout) is dropped before it reaches the model, and ``close`` decodes what
is still waiting before it returns (SIGTERM drains).
"""
from __future__ import annotations

import asyncio
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable

from trainer.serving.metrics import ServeMetrics


class QueueFull(Exception):
    """More requests are waiting than the queue holds."""


@dataclass
class Job:
    item: Any
    key: Hashable
    future: asyncio.Future
    arrived: float = field(default_factory=time.monotonic)


class Batcher:
    """Feeds ``decode(items, key) -> results`` (one result per item, in order) with batches of same-key jobs."""

    def __init__(self, decode: Callable[[list, Hashable], list], max_batch: int, max_wait_s: float, max_queue: int,
                 metrics: ServeMetrics):
        self.decode, self.max_batch, self.max_wait_s, self.max_queue = decode, max_batch, max_wait_s, max_queue
        self.metrics = metrics
        self.waiting: deque[Job] = deque()
        self.arrival = asyncio.Event()
        self.closing = False
        self.model_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="showattend-model")
        self.worker = asyncio.get_running_loop().create_task(self.run())

    async def submit(self, item: Any, key: Hashable) -> Any:
        """The result of ``item`` once decoded with ``key``; QueueFull when too many wait already."""
        if self.closing:
            raise QueueFull("shutting down")
        if len(self.waiting) >= self.max_queue:
            raise QueueFull(f"{len(self.waiting)} requests waiting")
        job = Job(item, key, asyncio.get_running_loop().create_future())
        self.waiting.append(job)
        self.metrics.queue_depth = len(self.waiting)
        self.arrival.set()
        return await job.future

    def same_key(self, key: Hashable) -> int:
        return sum(1 for job in self.waiting if job.key == key and not job.future.done())

    def take_batch(self) -> list[Job]:
        """Up to ``max_batch`` live jobs with the first waiting job's key, in arrival order; drops cancelled jobs."""
        while self.waiting and self.waiting[0].future.done():
            self.waiting.popleft()
        if not self.waiting:
            return []
        key, batch, rest = self.waiting[0].key, [], deque()
        for job in self.waiting:
            if job.future.done():
                continue
            (batch if job.key == key and len(batch) < self.max_batch else rest).append(job)
        self.waiting = rest
        self.metrics.queue_depth = len(rest)
        return batch

    async def wait_for_batch(self) -> None:
        """Until the first waiting job's key has ``max_batch`` jobs or it has waited ``max_wait_s``."""
        first = self.waiting[0]
        while not self.closing and self.same_key(first.key) < self.max_batch:
            remaining = first.arrived + self.max_wait_s - time.monotonic()
            if remaining <= 0:
                return
            self.arrival.clear()
            try:
                await asyncio.wait_for(self.arrival.wait(), remaining)
            except asyncio.TimeoutError:
                return

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self.waiting:
                if self.closing:
                    return
                self.arrival.clear()
                await self.arrival.wait()
                continue
            await self.wait_for_batch()
            batch = self.take_batch()
            if not batch:
                continue
            self.metrics.batch_size.observe(len(batch))
            try:
                results = await loop.run_in_executor(self.model_thread, self.decode, [job.item for job in batch],
                                                     batch[0].key)
            except Exception as error:  # noqa: BLE001 - the batch's requests get the error, the service goes on
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(error)
                continue
            for job, result in zip(batch, results):
                if not job.future.done():
                    job.future.set_result(result)

    async def close(self) -> None:
        """Decode every waiting job, then stop the model thread."""
        self.closing = True
        self.arrival.set()
        await self.worker
        self.model_thread.shutdown(wait=True)
