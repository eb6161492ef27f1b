"""Shared state adapters need across processes: cached tokens, rate-limit buckets, locks.

`MemoryState` serves the embedded single-process mode; `bot.redis_state.RedisState`
implements the same Protocol on Redis so N processes share tokens and buckets.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Protocol


class SharedState(Protocol):
    async def get(self, key: str) -> str | None: ...

    async def set(self, key: str, value: str, ttl: float | None = None) -> None: ...

    async def delete(self, key: str) -> None: ...

    async def take(self, bucket: str, rate: float, burst: float, cost: float = 1.0) -> float:
        """Token bucket: take `cost` tokens; returns 0.0 if taken, else seconds to wait."""
        ...

    def lock(self, name: str, ttl: float = 30.0) -> AbstractAsyncContextManager[None]:
        """Mutual exclusion across every process sharing this state."""
        ...


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class MemoryState:
    """In-process SharedState for the embedded mode and unit tests."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._values: dict[str, tuple[str, float | None]] = {}
        self._buckets: dict[str, _Bucket] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(self, key: str) -> str | None:
        entry = self._values.get(key)
        if entry is None:
            return None
        value, expires = entry
        if expires is not None and expires <= self._clock():
            self._values.pop(key, None)
            return None
        return value

    async def set(self, key: str, value: str, ttl: float | None = None) -> None:
        self._values[key] = (value, None if ttl is None else self._clock() + ttl)

    async def delete(self, key: str) -> None:
        self._values.pop(key, None)

    async def take(self, bucket: str, rate: float, burst: float, cost: float = 1.0) -> float:
        now = self._clock()
        b = self._buckets.get(bucket)
        if b is None:
            b = self._buckets[bucket] = _Bucket(tokens=burst, stamp=now)
        b.tokens = min(burst, b.tokens + (now - b.stamp) * rate)
        b.stamp = now
        if b.tokens >= cost:
            b.tokens -= cost
            return 0.0
        return (cost - b.tokens) / rate

    def lock(self, name: str, ttl: float = 30.0) -> AbstractAsyncContextManager[None]:
        return self._lock(name)

    @asynccontextmanager
    async def _lock(self, name: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            yield


async def wait_for_token(
    state: SharedState, bucket: str, rate: float, burst: float, cost: float = 1.0
) -> None:
    """Block until the bucket grants `cost` tokens (used to stay under provider limits)."""
    while True:
        wait = await state.take(bucket, rate, burst, cost)
        if wait <= 0:
            return
        await asyncio.sleep(wait)
