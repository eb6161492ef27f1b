"""SQLite's in-process writer queue: acknowledgement writes go before background ones."""

from __future__ import annotations

import asyncio

import pytest

from conversations.db import WriterGate


async def _take(gate: WriterGate, name: str, order: list[str], *, urgent: bool) -> None:
    await gate.acquire(urgent=urgent)
    order.append(name)
    await asyncio.sleep(0)
    gate.release()


async def test_urgent_writer_goes_before_background_writers_queued_earlier() -> None:
    gate = WriterGate()
    order: list[str] = []
    await gate.acquire()  # a pipeline batch is writing
    waiters = [
        asyncio.create_task(_take(gate, "pipeline-2", order, urgent=False)),
        asyncio.create_task(_take(gate, "outbox", order, urgent=False)),
        asyncio.create_task(_take(gate, "ingest", order, urgent=True)),
    ]
    await asyncio.sleep(0)  # all three queued
    gate.release()
    await asyncio.gather(*waiters)
    assert order == ["ingest", "pipeline-2", "outbox"]


async def test_a_cancelled_waiter_never_keeps_the_gate() -> None:
    gate = WriterGate()
    order: list[str] = []
    await gate.acquire()
    cancelled = asyncio.create_task(gate.acquire(urgent=True))
    later = asyncio.create_task(_take(gate, "later", order, urgent=False))
    await asyncio.sleep(0)
    gate.release()  # hands the gate to the urgent waiter …
    cancelled.cancel()  # … which is cancelled before it runs: the gate moves on
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    await asyncio.wait_for(later, timeout=5)
    assert order == ["later"]
    await asyncio.wait_for(gate.acquire(), timeout=5)  # and is free afterwards
    gate.release()


async def test_a_waiter_cancelled_in_the_queue_leaves_it() -> None:
    gate = WriterGate()
    await gate.acquire()
    queued = asyncio.create_task(gate.acquire())
    await asyncio.sleep(0)
    queued.cancel()
    with pytest.raises(asyncio.CancelledError):
        await queued
    gate.release()
    await asyncio.wait_for(gate.acquire(urgent=True), timeout=5)
    gate.release()
