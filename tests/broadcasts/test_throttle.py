"""The dispatcher's send gate: never more than R sends in any one-second window, and
close to R on average even when the sender wakes late."""

from __future__ import annotations

import bisect
import random

from broadcasts.throttle import AccountThrottle, RateOf, rate_from_config
from channels.state import MemoryState


class FakeTime:
    """A clock whose sleep oversleeps by ~`lateness` and now and then stalls up to
    `stall` seconds, as a busy event loop does."""

    def __init__(self, lateness: float = 0.0, stall: float = 0.0, seed: int = 1) -> None:
        self.now = 1000.0
        self._rng = random.Random(seed)
        self._lateness = lateness
        self._stall = stall

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        late = self._rng.expovariate(1 / self._lateness) if self._lateness else 0.0
        if self._stall and self._rng.random() < 0.05:
            late += self._rng.uniform(0, self._stall)
        self.now += seconds + late


def most_in_one_second(released: list[float]) -> int:
    """The most sends in any window (t - 1 s, t], as the provider counts them."""
    return max(
        bisect.bisect_right(released, t) - bisect.bisect_right(released, t - 1.0) for t in released
    )


def rate(value: float | None) -> RateOf:
    async def rate_of(_account: int) -> float | None:
        return value

    return rate_of


async def release(gate: AccountThrottle, clock: FakeTime, sends: int) -> list[float]:
    released = []
    for _ in range(sends):
        await gate(7, "marketing")
        released.append(clock.now)
    return released


async def test_never_more_than_r_sends_in_any_second() -> None:
    clock = FakeTime()
    gate = AccountThrottle(MemoryState(clock=clock), rate(5.0), sleep=clock.sleep)
    released = await release(gate, clock, 60)
    assert most_in_one_second(released) == 5


async def test_the_window_keeps_a_margin_beyond_the_providers_second() -> None:
    # a send that reaches the provider up to 30 ms later than the one before it
    # R sends ago still cannot make R+1 in the provider's second
    clock = FakeTime()
    gate = AccountThrottle(MemoryState(clock=clock), rate(20.0), sleep=clock.sleep)
    released = await release(gate, clock, 200)
    assert min(b - a for a, b in zip(released, released[20:], strict=False)) >= 1.03 - 1e-9


async def test_a_backlog_leaves_evenly_spaced_not_in_one_burst() -> None:
    clock = FakeTime()
    gate = AccountThrottle(MemoryState(clock=clock), rate(100.0), sleep=clock.sleep)
    released = await release(gate, clock, 300)
    gaps = [b - a for a, b in zip(released, released[1:], strict=False)]
    assert min(gaps) >= 0.01 - 1e-9


async def test_late_wakeups_are_caught_up() -> None:
    """Every sleep oversleeps by ~1 ms (10 % of a slot at R = 100), which cost a burst-1
    token bucket 9 % of the rate; the gate still reaches ≥ 0.97·R."""
    clock = FakeTime(lateness=0.001)
    gate = AccountThrottle(MemoryState(clock=clock), rate(100.0), sleep=clock.sleep)
    released = await release(gate, clock, 3000)
    achieved = (len(released) - 1) / (released[-1] - released[0])
    assert achieved >= 0.97 * 100
    assert most_in_one_second(released) <= 100


async def test_a_busy_event_loop_is_caught_up() -> None:
    """Stalls of up to 200 ms (one sleep in twenty) are made up by the catch-up
    tolerance, still never more than R in a second."""
    clock = FakeTime(lateness=0.001, stall=0.2, seed=3)
    gate = AccountThrottle(MemoryState(clock=clock), rate(100.0), sleep=clock.sleep)
    released = await release(gate, clock, 3000)
    achieved = (len(released) - 1) / (released[-1] - released[0])
    assert achieved >= 0.95 * 100
    assert most_in_one_second(released) <= 100


async def test_a_fractional_rate_sends_once_per_its_period() -> None:
    clock = FakeTime()
    gate = AccountThrottle(MemoryState(clock=clock), rate(0.5), sleep=clock.sleep)
    released = await release(gate, clock, 5)
    assert min(b - a for a, b in zip(released, released[1:], strict=False)) >= 2.0


async def test_accounts_without_a_rate_are_not_gated() -> None:
    clock = FakeTime()
    gate = AccountThrottle(MemoryState(clock=clock), rate(None), sleep=clock.sleep)
    for _ in range(100):
        await gate(1, "reply")
    assert clock.now == 1000.0


def test_rate_comes_from_the_account_config() -> None:
    assert rate_from_config({"rate_per_second": "50"}) == 50.0
    assert rate_from_config({"rate_per_second": 0}) is None
    assert rate_from_config({}) is None
    assert rate_from_config({"rate_per_second": "fast"}) is None
