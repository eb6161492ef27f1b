"""Scheduled one-to-one reminders on the broadcast machinery: a salesperson's follow-up
message to one customer at a time, and a daily birthday greeting (生日祝福)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from .audience import AudienceRegistry
from .control import Draft, create_broadcast, submit
from .models import Broadcast
from .policy import PolicyRegistry


async def schedule_reminder(
    session: AsyncSession,
    *,
    customer_id: int,
    at_local: str,
    timezone: str,
    content: Mapping[str, Any],
    channel_order: Sequence[int],
    actor_id: int | None,
    policies: PolicyRegistry,
    audiences: AudienceRegistry,
    now: datetime,
    name: str = "跟进提醒",
) -> Broadcast:
    """A follow-up to one customer at a local time (no caps or quiet hours: not marketing)."""
    broadcast = await create_broadcast(
        session,
        Draft(
            name=name,
            audience={"kind": "customers", "customer_ids": [customer_id]},
            content=content,
            channel_order=channel_order,
            schedule={"kind": "at", "at": at_local},
            timezone=timezone,
            purpose="reminder",
        ),
        actor_id=actor_id,
    )
    return await submit(
        session, broadcast, actor_id=actor_id, policies=policies, audiences=audiences, now=now
    )


async def schedule_birthday_greetings(
    session: AsyncSession,
    *,
    hour: int,
    timezone: str,
    content: Mapping[str, Any],
    channel_order: Sequence[int],
    actor_id: int | None,
    policies: PolicyRegistry,
    audiences: AudienceRegistry,
    now: datetime,
) -> Broadcast:
    """Every day at `hour` local time, greet the customers whose birthday it is."""
    broadcast = await create_broadcast(
        session,
        Draft(
            name="生日祝福",
            audience={"kind": "birthday"},
            content=content,
            channel_order=channel_order,
            schedule={"kind": "cron", "cron": f"0 {hour} * * *"},
            timezone=timezone,
            purpose="reminder",
        ),
        actor_id=actor_id,
    )
    return await submit(
        session, broadcast, actor_id=actor_id, policies=policies, audiences=audiences, now=now
    )
