"""IngestPressure: background work steps aside while callbacks wait for their commit."""

from __future__ import annotations

from bot.ingest import IngestPressure


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_quiet_only_after_a_gap_without_callbacks() -> None:
    clock = Clock()
    pressure = IngestPressure(quiet_gap=0.02, clock=clock)
    assert pressure.quiet()
    pressure.begin()
    assert not pressure.quiet()
    pressure.end()
    assert not pressure.quiet()  # the next callback of a burst is probably on its way
    clock.now += 0.03
    assert pressure.quiet()


async def test_turn_is_immediate_when_quiet() -> None:
    assert await IngestPressure().turn() is False


async def test_turn_gives_up_waiting_after_max_defer() -> None:
    pressure = IngestPressure(quiet_gap=0.005, max_defer=0.02)
    pressure.begin()
    assert await pressure.turn() is True  # still busy: the caller takes a small batch


async def test_turn_returns_once_callbacks_pause() -> None:
    clock = Clock()
    pressure = IngestPressure(quiet_gap=0.005, max_defer=60, clock=clock)
    pressure.begin()
    pressure.end()
    clock.now += 1.0
    assert await pressure.turn() is False
