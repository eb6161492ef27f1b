"""Freezing a run's audience into recipient rows, once (DESIGN.md invariant 4).

One transaction: either every recipient row exists and the run is 'sending', or none
does and the next attempt starts over. A restart never recounts a frozen audience.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.sql import insert_ignore_returning_id

from .audience import AudienceRegistry, TaskAudience
from .content import urls_in
from .models import (
    Broadcast,
    BroadcastLink,
    BroadcastRecipient,
    BroadcastRun,
    RecipientStatus,
    RunStatus,
)

_COLUMNS = ["run_id", "customer_id", "status", "hop", "marketing"]


async def freeze_run(
    session: AsyncSession, run_id: int, audiences: AudienceRegistry, now: datetime
) -> int | None:
    """Freeze the audience of a run still 'freezing'; returns the recipient count, or
    None when the run was already frozen (or cancelled) by someone else."""
    dialect = session.get_bind().dialect.name
    run = await session.get(BroadcastRun, run_id, with_for_update=dialect == "postgresql")
    if run is None or run.status != RunStatus.FREEZING.value:
        return None
    broadcast = await session.get(Broadcast, run.broadcast_id)
    assert broadcast is not None
    marketing = broadcast.purpose == "marketing"
    source = audiences.source(broadcast.audience, run.fire_time, broadcast.timezone)
    query = None if isinstance(source, TaskAudience) else source.select_ids()
    if isinstance(source, TaskAudience):
        targets = await source.targets(session)
        if targets:
            await session.execute(
                insert(BroadcastRecipient),
                [
                    {
                        "run_id": run_id,
                        "customer_id": None,
                        "status": RecipientStatus.GROUPING.value,
                        "account_id": t.account_id,
                        "address": t.address,
                        "hop": 0,
                        "marketing": marketing,
                        "queued_at": now,
                    }
                    for t in targets
                ],
            )
    elif query is not None:
        ids = query.subquery()
        rows = select(
            literal(run_id), ids.c[0], literal("pending"), literal(0), literal(marketing)
        ).distinct()
        await session.execute(insert(BroadcastRecipient).from_select(_COLUMNS, rows))
    else:
        seen: set[int] = set()
        async for batch in source.batches(session):
            fresh = [cid for cid in dict.fromkeys(batch) if cid not in seen]
            seen.update(fresh)
            await _insert_batch(session, run_id, fresh, marketing)
    total = await session.scalar(
        select(func.count())
        .select_from(BroadcastRecipient)
        .where(BroadcastRecipient.run_id == run_id)
    )
    for url in _content_urls(broadcast):
        await insert_ignore_returning_id(
            session,
            BroadcastLink.__table__,  # type: ignore[arg-type]  # declarative tables are Tables
            {"broadcast_id": broadcast.id, "url": url},
            ("broadcast_id", "url"),
        )
    run.total = int(total or 0)
    run.frozen_at = now
    run.status = RunStatus.SENDING.value
    return run.total


async def _insert_batch(
    session: AsyncSession, run_id: int, customer_ids: Sequence[int], marketing: bool
) -> None:
    if customer_ids:
        await session.execute(
            insert(BroadcastRecipient),
            [
                {
                    "run_id": run_id,
                    "customer_id": c,
                    "status": "pending",
                    "hop": 0,
                    "marketing": marketing,
                }
                for c in customer_ids
            ],
        )


def _content_urls(broadcast: Broadcast) -> list[str]:
    urls: list[str] = []
    for variant in broadcast.content.values():
        if isinstance(variant, dict) and variant.get("track_links", True):
            urls.extend(urls_in(variant))
    return list(dict.fromkeys(urls))
