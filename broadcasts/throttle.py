"""A send gate for the outbox dispatcher: a per-account token bucket (burst 1, so sends
are at least 1/R apart and never more than R fall in any one-second window), shared by
every worker through `SharedState.take`. The queuer's pacing (sending.py) keeps the
backlog small; this gate makes the rate exact whatever the dispatcher's polling does."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol


class TokenBuckets(Protocol):
    async def take(self, bucket: str, rate: float, burst: float, cost: float = 1.0) -> float: ...


RateOf = Callable[[int], Awaitable[float | None]]  # account id → sends per second


class AccountThrottle:
    def __init__(
        self,
        buckets: TokenBuckets,
        rate_of: RateOf,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.buckets = buckets
        self.rate_of = rate_of
        self.sleep = sleep

    async def __call__(self, account_id: int, purpose: str) -> None:
        """Wait until the account may send one more message."""
        rate = await self.rate_of(account_id)
        if not rate:
            return
        while True:
            wait = await self.buckets.take(f"send-rate:{account_id}", rate, 1.0)
            if wait <= 0:
                return
            await self.sleep(wait)


def rate_from_config(config: Any) -> float | None:
    """`rate_per_second` from a channel account's config, if set and positive."""
    try:
        value = float((config or {}).get("rate_per_second") or 0)
    except (TypeError, ValueError, AttributeError):
        return None
    return value if value > 0 else None
