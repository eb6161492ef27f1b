"""A send gate for the outbox dispatcher: per account, never more than R sends in any
one-second window as the provider counts them, and still close to R on average.

Why not a token bucket: with burst 1 (the only burst that keeps a bucket under R per
second) every sender the event loop wakes δ late loses δ of its slot for good; at
R = 100 that cost 9 % of the rate. So the gate is `SharedState.pace` (atomic across
workers; on Redis it runs on the server clock) with:

- a sliding-window log of ⌊R⌋ grants per window, the window 3 % longer than one second
  so that up to 30 ms of jitter between our grant and the provider's clock (network, a
  process paused between the grant and the request) cannot move an (R+1)-th send into
  the provider's second. It bounds the average at R / 1.03 ≈ 0.971·R.
- a GCRA schedule at R: a backlog leaves evenly spaced, and a sender that fell behind
  (a late wake-up; the event loop busy for a few hundred milliseconds with a batch or
  a garbage collection, as the benchmark measures) sends up to `catch_up` seconds of
  missed slots at once instead of losing them. The log still caps that catch-up, so it
  never adds up to more than R in a second; it does repeat the clump's shape in the
  next windows, at most `catch_up`·R sends at once.

The queuer's pacing (sending.py) keeps the backlog small; this gate makes the rate exact
whatever the dispatcher's polling does.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from channels.state import PaceLimits


class SendPacer(Protocol):
    async def pace(self, key: str, limits: PaceLimits) -> float: ...


RateOf = Callable[[int], Awaitable[float | None]]  # account id → sends per second

# how much longer than the provider's second our window is (see the module docstring)
WINDOW_MARGIN = 0.03
# how far behind its schedule a sender may fall and still make the slots up
CATCH_UP_SECONDS = 0.25


def send_limits(rate: float, catch_up: float = CATCH_UP_SECONDS) -> PaceLimits:
    """The gate for a provider that accepts `rate` sends per second."""
    # a fractional R (0.5/s) becomes ⌊R⌋ (at least 1) sends per ⌊R⌋/R seconds
    limit = max(1, math.floor(rate))
    window = limit / rate * (1 + WINDOW_MARGIN)
    burst = min(limit, max(2, math.ceil(rate * catch_up)))
    return PaceLimits(rate=rate, limit=limit, window=window, burst=burst)


class AccountThrottle:
    def __init__(
        self,
        state: SendPacer,
        rate_of: RateOf,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        *,
        catch_up: float = CATCH_UP_SECONDS,
    ) -> None:
        self.state = state
        self.rate_of = rate_of
        self.sleep = sleep
        self.catch_up = catch_up

    async def __call__(self, account_id: int, purpose: str) -> None:
        """Wait until the account may send one more message."""
        rate = await self.rate_of(account_id)
        if not rate:
            return
        limits = send_limits(rate, self.catch_up)
        while True:
            wait = await self.state.pace(f"send-rate:{account_id}", limits)
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
