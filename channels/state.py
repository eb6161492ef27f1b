"""Shared state adapters need across processes: cached tokens, rate-limit buckets, locks.

`MemoryState` serves the embedded single-process mode; `bot.redis_state.RedisState`
implements the same Protocol on Redis so N processes share tokens and buckets.

Two rate limiters: `take` is a plain token bucket (API call budgets, where a burst of
`burst` is fine); `pace` is the hard send gate for providers that refuse the (R+1)-th
message in a second: a sliding-window log (never more than `limit` grants in any
`window` seconds) combined with virtual scheduling (GCRA) at `rate` with a tolerance of
`burst` grants, so a late waker catches up instead of losing its slot, and a backlog
still leaves evenly spaced rather than as one burst at the start of each window.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
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

    async def pace(self, key: str, *, rate: float, burst: int, limit: int, window: float) -> float:
        """Grant one send unless `limit` were granted in the last `window` seconds or it
        would run more than `burst` grants ahead of an even `rate` per second; returns
        0.0 if granted, else seconds until it would be."""
        ...

    def lock(self, name: str, ttl: float = 30.0) -> AbstractAsyncContextManager[None]:
        """Mutual exclusion across every process sharing this state."""
        ...


@dataclass
class _Bucket:
    tokens: float
    stamp: float


# a refused `pace` asks for at least this long, so float rounding at the window edge
# can never make a caller spin on a zero wait
MIN_PACE_WAIT = 1e-6


@dataclass
class _Pace:
    granted: deque[float]  # grant times within the last window, oldest first
    tat: float  # GCRA theoretical arrival time of the next grant

    def idle_at(self, window: float) -> float:
        """From then on this state is the same as none at all."""
        return max(self.tat, self.granted[-1] + window if self.granted else self.tat)


class MemoryState:
    """In-process SharedState for the embedded mode and unit tests."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._values: dict[str, tuple[str, float | None]] = {}
        self._buckets: dict[str, _Bucket] = {}
        self._paces: dict[str, tuple[_Pace, float]] = {}  # key → (state, window)
        self._next_pace_sweep = float("-inf")
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

    async def pace(self, key: str, *, rate: float, burst: int, limit: int, window: float) -> float:
        check_pace(rate, burst, limit, window)
        now = self._clock()
        self._sweep_idle_paces(now)
        entry = self._paces.get(key)
        p = entry[0] if entry is not None else _Pace(deque(), now)
        while p.granted and p.granted[0] <= now - window:
            p.granted.popleft()
        wait = p.tat - (burst - 1) / rate - now
        if len(p.granted) >= limit:
            wait = max(wait, p.granted[-limit] + window - now)
        if wait > 0:
            return max(wait, MIN_PACE_WAIT)
        p.tat = max(p.tat, now) + 1 / rate
        p.granted.append(now)
        self._paces[key] = (p, window)
        return 0.0

    def _sweep_idle_paces(self, now: float) -> None:
        # what Redis does with PEXPIRE: forget accounts that stopped sending
        if now < self._next_pace_sweep:
            return
        self._paces = {k: e for k, e in self._paces.items() if e[0].idle_at(e[1]) > now}
        self._next_pace_sweep = now + 60.0

    def lock(self, name: str, ttl: float = 30.0) -> AbstractAsyncContextManager[None]:
        return self._lock(name)

    @asynccontextmanager
    async def _lock(self, name: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            yield


def check_pace(rate: float, burst: int, limit: int, window: float) -> None:
    """Reject `pace` arguments that would grant nothing or divide by zero."""
    if rate <= 0 or window <= 0 or burst < 1 or limit < 1:
        raise ValueError("pace needs rate > 0, window > 0, burst >= 1 and limit >= 1")


async def wait_for_token(
    state: SharedState, bucket: str, rate: float, burst: float, cost: float = 1.0
) -> None:
    """Block until the bucket grants `cost` tokens (used to stay under provider limits)."""
    while True:
        wait = await state.take(bucket, rate, burst, cost)
        if wait <= 0:
            return
        await asyncio.sleep(wait)
