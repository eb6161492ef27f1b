"""The pipeline's work queue. Items are small strings (e.g. "message:42"); the data
itself is already durable in the store, so a queue only carries wake-ups and ids.

`InProcessQueue` is the embedded default. `bot.redis_queue.RedisStreamQueue` implements
the same Protocol with consumer groups, XAUTOCLAIM and dead-lettering (issue 10).
Handlers never know which one runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)

Consumer = Callable[[str], Awaitable[None]]
DeadLetterSink = Callable[[str, str, str, int], Awaitable[None]]  # topic, item, error, attempts


class WorkQueue(Protocol):
    async def publish(self, topic: str, item: str) -> None: ...

    async def consume(self, topic: str, consumer: Consumer, stop: asyncio.Event) -> None:
        """Run until `stop` is set: deliver items, ack after `consumer` returns, retry
        with backoff when it raises, dead-letter after `max_attempts`."""
        ...

    async def depth(self, topic: str) -> int: ...

    async def close(self) -> None: ...


@dataclass
class _Entry:
    item: str
    attempts: int = 0


class InProcessQueue:
    """asyncio queues per topic; items lost on a crash are recovered from the store
    (rows with processed_at IS NULL are re-published at start)."""

    def __init__(
        self,
        dead_letter: DeadLetterSink | None = None,
        max_attempts: int = 5,
        base_delay: float = 0.5,
        concurrency: int = 4,
    ) -> None:
        self._queues: dict[str, asyncio.Queue[_Entry]] = {}
        self._dead_letter = dead_letter
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.concurrency = concurrency
        self._retry_tasks: set[asyncio.Task[None]] = set()

    def _queue(self, topic: str) -> asyncio.Queue[_Entry]:
        return self._queues.setdefault(topic, asyncio.Queue())

    async def publish(self, topic: str, item: str) -> None:
        self._queue(topic).put_nowait(_Entry(item))

    async def depth(self, topic: str) -> int:
        return self._queue(topic).qsize()

    async def consume(self, topic: str, consumer: Consumer, stop: asyncio.Event) -> None:
        queue = self._queue(topic)
        async with asyncio.TaskGroup() as group:
            for _ in range(self.concurrency):
                group.create_task(self._worker(topic, queue, consumer, stop))

    async def _worker(
        self, topic: str, queue: asyncio.Queue[_Entry], consumer: Consumer, stop: asyncio.Event
    ) -> None:
        while not stop.is_set():
            try:
                entry = await asyncio.wait_for(queue.get(), timeout=0.5)
            except TimeoutError:
                continue
            try:
                await consumer(entry.item)
            except Exception as exc:  # noqa: BLE001  (a failing handler must not stop the queue)
                entry.attempts += 1
                log.warning(
                    "queue %s item %s failed (attempt %d): %r",
                    topic,
                    entry.item,
                    entry.attempts,
                    exc,
                )
                if entry.attempts >= self.max_attempts:
                    if self._dead_letter is not None:
                        await self._dead_letter(topic, entry.item, repr(exc), entry.attempts)
                else:
                    self._schedule_retry(queue, entry)
            finally:
                queue.task_done()

    def _schedule_retry(self, queue: asyncio.Queue[_Entry], entry: _Entry) -> None:
        async def later() -> None:
            await asyncio.sleep(self.base_delay * 2 ** (entry.attempts - 1))
            queue.put_nowait(entry)

        task = asyncio.get_running_loop().create_task(later())
        self._retry_tasks.add(task)
        task.add_done_callback(self._retry_tasks.discard)

    async def join(self, topic: str) -> None:
        """Wait until every published item of a topic was handled (tests, shutdown)."""
        await self._queue(topic).join()

    async def close(self) -> None:
        for task in list(self._retry_tasks):
            task.cancel()
