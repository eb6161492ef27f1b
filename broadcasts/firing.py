"""Firing schedules exactly once (DESIGN.md invariant 5).

A fire is the INSERT of a run under the unique (broadcast_id, fire_time): two scheduler
processes may both see a broadcast due, only one insert succeeds, and the schedule's
next fire time moves in the same transaction. Missed cron fires (scheduler down) are
coalesced: the next fire is computed from now, so a long outage sends once, not N times.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.sql import insert_ignore_returning_id

from .models import Broadcast, BroadcastRun, BroadcastStatus, RunStatus
from .schedule import Schedule

log = logging.getLogger(__name__)


async def fire_due(session: AsyncSession, now: datetime, limit: int = 20) -> list[int]:
    """Create runs for due broadcasts; returns the ids of runs this call created."""
    query = (
        select(Broadcast)
        .where(
            Broadcast.status == BroadcastStatus.SCHEDULED.value,
            Broadcast.next_fire_at.is_not(None),
            Broadcast.next_fire_at <= now,
        )
        .order_by(Broadcast.next_fire_at)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    created: list[int] = []
    for broadcast in (await session.scalars(query)).all():
        fire_time = broadcast.next_fire_at
        assert fire_time is not None
        run_id = await insert_ignore_returning_id(
            session,
            BroadcastRun.__table__,  # type: ignore[arg-type]  # declarative tables are Tables
            {
                "broadcast_id": broadcast.id,
                "fire_time": fire_time,
                "status": RunStatus.FREEZING.value,
                "total": 0,
                "created_at": now,
            },
            ("broadcast_id", "fire_time"),
        )
        if run_id is not None:
            created.append(run_id)
            log.info("broadcast=%s fired run=%s at %s", broadcast.id, run_id, fire_time)
        schedule = Schedule.parse(broadcast.schedule, broadcast.timezone)
        following = schedule.next_fire(fire_time, now)
        # compare-and-set on the fire time: a second scheduler's stale view changes nothing
        await session.execute(
            update(Broadcast)
            .where(Broadcast.id == broadcast.id, Broadcast.next_fire_at == fire_time)
            .values(
                next_fire_at=following,
                status=BroadcastStatus.SCHEDULED.value
                if following is not None
                else BroadcastStatus.FINISHED.value,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
    return created
