"""The `crmbot scheduler` role's loop: ticks until stopped, waking the dispatcher."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from bot.scheduler import run_scheduler
from conversations.models import OutboxItem
from tests.system import eventually

from .conftest import World


async def test_scheduler_loop_sends_due_broadcasts_and_stops_on_request(world: World) -> None:
    c = await world.customer("甲", phone="+8613800000001")
    await world.broadcast([c])
    woken = asyncio.Event()
    engine = world.engine(on_queued=[woken.set])
    stop = asyncio.Event()
    task = asyncio.create_task(run_scheduler(engine, stop, idle=0.05))

    async def queued() -> int:
        async with world.db.reading() as s:
            return int(await s.scalar(select(func.count()).select_from(OutboxItem)) or 0)

    assert await eventually(queued) == 1
    await asyncio.wait_for(woken.wait(), timeout=5)  # after the tick, not at the commit
    stop.set()
    await asyncio.wait_for(task, timeout=5)
