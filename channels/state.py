"""Shared state adapters need across processes: cached tokens, rate-limit buckets, locks.

`MemoryState` serves the embedded single-process mode; `bot.redis_state.RedisState`
implements the same Protocol on Redis so N processes share tokens and buckets.

Two rate limiters: `take` is a plain token bucket (API call budgets, where a burst of
`burst` is fine); `pace` is the hard send gate for providers that refuse the (R+1)-th
message in a second (`PaceLimits` says how it decides).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class PaceLimits:
    """A send gate that holds over every window yet does not lose slots to late
    wake-ups. A grant needs both:

    - the log: fewer than `limit` grants in the last `window` seconds. This is the
      hard bound, whatever the callers' timing.
    - the schedule (virtual scheduling, as in GCRA): slots 1/`rate` apart. A sender
      woken late (or after its event loop was busy) takes the slots it missed at once
      instead of losing them, as long as it fell at most `burst` - 1 slots behind. A
      new or idle schedule starts at its first grant with nothing to make up, so a
      backlog leaves evenly spaced, never as a burst at the start of a window.
    """

    rate: float
    limit: int
    window: float
    burst: int = 1

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.limit < 1 or self.window <= 0 or self.burst < 1:
            raise ValueError("pace needs rate > 0, limit >= 1, window > 0 and burst >= 1")


class SharedState(Protocol):
    async def get(self, key: str) -> str | None: ...

    async def set(self, key: str, value: str, ttl: float | None = None) -> None: ...

    async def delete(self, key: str) -> None: ...

    async def take(self, bucket: str, rate: float, burst: float, cost: float = 1.0) -> float:
        """Token bucket: take `cost` tokens; returns 0.0 if taken, else seconds to wait."""
        ...

    async def pace(self, key: str, limits: PaceLimits) -> float:
        """Grant one send under `limits`: 0.0 if granted, else seconds until it would be."""
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
    tat: float  # GCRA theoretical arrival time: next slot + (burst - 1) slots
    window: float

    @classmethod
    def fresh(cls, now: float, limits: PaceLimits) -> _Pace:
        """A schedule whose first slot is now, with no missed slots to make up."""
        return cls(deque(), now + (limits.burst - 1) / limits.rate, limits.window)

    def idle(self, now: float) -> bool:
        """Nothing granted within the window and the schedule behind: start afresh."""
        while self.granted and self.granted[0] <= now - self.window:
            self.granted.popleft()
        return not self.granted and self.tat <= now


class MemoryState:
    """In-process SharedState for the embedded mode and unit tests."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._values: dict[str, tuple[str, float | None]] = {}
        self._buckets: dict[str, _Bucket] = {}
        self._paces: dict[str, _Pace] = {}
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

    async def pace(self, key: str, limits: PaceLimits) -> float:
        now = self._clock()
        self._sweep_idle_paces(now)
        p = self._paces.get(key)
        if p is not None:
            p.window = limits.window
        if p is None or p.idle(now):
            p = self._paces[key] = _Pace.fresh(now, limits)
        wait = p.tat - (limits.burst - 1) / limits.rate - now
        if len(p.granted) >= limits.limit:
            wait = max(wait, p.granted[-limits.limit] + limits.window - now)
        if wait > 0:
            return max(wait, MIN_PACE_WAIT)
        p.tat = max(p.tat, now) + 1 / limits.rate
        p.granted.append(now)
        return 0.0

    def _sweep_idle_paces(self, now: float) -> None:
        # what Redis does with PEXPIRE: forget accounts that stopped sending
        if now < self._next_pace_sweep:
            return
        self._paces = {k: p for k, p in self._paces.items() if not p.idle(now)}
        self._next_pace_sweep = now + 60.0

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
