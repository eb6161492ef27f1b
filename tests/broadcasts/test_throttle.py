"""The dispatcher's send gate: never more than R sends in any one-second window."""

from __future__ import annotations

import bisect

from broadcasts.throttle import AccountThrottle, rate_from_config
from channels.state import MemoryState


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


async def test_sends_through_the_gate_are_at_least_one_slot_apart() -> None:
    clock = FakeTime()

    async def rate_of(_account: int) -> float | None:
        return 5.0

    gate = AccountThrottle(MemoryState(clock=clock), rate_of, sleep=clock.sleep)
    released = []
    for _ in range(26):
        await gate(7, "marketing")
        released.append(clock.now)
    gaps = [b - a for a, b in zip(released, released[1:], strict=False)]
    assert min(gaps) >= 0.2 - 1e-9
    most = max(bisect.bisect_left(released, t + 1.0) - i for i, t in enumerate(released))
    assert most == 5
    assert released[-1] - released[0] <= 25 * 0.2 + 1e-9  # and no slower than R


async def test_accounts_without_a_rate_are_not_gated() -> None:
    clock = FakeTime()

    async def rate_of(_account: int) -> float | None:
        return None

    gate = AccountThrottle(MemoryState(clock=clock), rate_of, sleep=clock.sleep)
    for _ in range(100):
        await gate(1, "reply")
    assert clock.now == 1000.0


def test_rate_comes_from_the_account_config() -> None:
    assert rate_from_config({"rate_per_second": "50"}) == 50.0
    assert rate_from_config({"rate_per_second": 0}) is None
    assert rate_from_config({}) is None
    assert rate_from_config({"rate_per_second": "fast"}) is None
