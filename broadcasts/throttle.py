"""A send gate for the outbox dispatcher: per account, never more than R sends in any
one-second window as the provider counts them, and still close to R on average.

Why not a token bucket: with burst 1 (the only burst that keeps a bucket under R per
second) every sender the event loop wakes δ late loses δ of its slot for good; at
R = 100 that cost 9 % of the rate. So the gate is two limits on `SharedState.pace`
(atomic across workers; on Redis it runs on the server clock):

- a sliding-window log: at most ⌊R⌋ grants in any `window` seconds. The window is a
  little longer than one second (2.5 %) so that jitter between our grant and the
  provider's clock (network, a busy loop) cannot move an (R+1)-th send into the
  provider's second. This bounds the average at R / 1.025 ≈ 0.976·R.
- virtual scheduling (GCRA) at R with a tolerance of a few sends (`catch_up` seconds'
  worth): a late waker sends its missed slots at once and is back on schedule, while a
  backlog still leaves evenly spaced instead of as one burst at the start of a window.

The queuer's pacing (sending.py) keeps the backlog small; this gate makes the rate exact
whatever the dispatcher's polling does.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from typing import Any, Protocol


class SendPacer(Protocol):
    async def pace(
        self, key: str, *, rate: float, burst: int, limit: int, window: float
    ) -> float: ...


RateOf = Callable[[int], Awaitable[float | None]]  # account id → sends per second

# how much longer than the provider's second our window is (see the module docstring)
WINDOW_MARGIN = 0.025
# how far behind schedule a sender may fall and still catch up, in seconds of sends
CATCH_UP = 0.05
MIN_BURST = 2


class AccountThrottle:
    def __init__(
        self,
        state: SendPacer,
        rate_of: RateOf,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        *,
        margin: float = WINDOW_MARGIN,
        catch_up: float = CATCH_UP,
    ) -> None:
        self.state = state
        self.rate_of = rate_of
        self.sleep = sleep
        self.margin = margin
        self.catch_up = catch_up

    async def __call__(self, account_id: int, purpose: str) -> None:
        """Wait until the account may send one more message."""
        rate = await self.rate_of(account_id)
        if not rate:
            return
        # a fractional R (0.5/s) becomes ⌊R⌋ (at least 1) sends per ⌊R⌋/R seconds
        limit = max(1, math.floor(rate))
        window = limit / rate * (1 + self.margin)
        burst = min(limit, max(MIN_BURST, math.ceil(rate * self.catch_up)))
        while True:
            wait = await self.state.pace(
                f"send-rate:{account_id}", rate=rate, burst=burst, limit=limit, window=window
            )
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
