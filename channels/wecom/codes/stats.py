"""Per-code statistics: customers added per day, customers lost (del_follow_user) and
conversion to a chosen tag (e.g. 意向/已成交) among the customers a code brought."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from tagging.models import CustomerTag

from .models import ContactCode, ContactCodeEvent


@dataclass(frozen=True)
class DayCount:
    day: date
    added: int
    lost: int


@dataclass(frozen=True)
class CodeStats:
    added: int
    lost: int
    days: list[DayCount]
    customers: int  # distinct customers brought by the code in the period
    converted: int  # of those, how many carry the conversion tag now

    @property
    def conversion_rate(self) -> float:
        return self.converted / self.customers if self.customers else 0.0


async def code_totals(session: AsyncSession) -> dict[int, tuple[int, int]]:
    """Added and lost customers of every code, for the list page."""
    rows = await session.execute(
        select(ContactCodeEvent.code_id, ContactCodeEvent.kind, func.count()).group_by(
            ContactCodeEvent.code_id, ContactCodeEvent.kind
        )
    )
    totals: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for code_id, kind, n in rows.all():
        totals[int(code_id)][0 if kind == "added" else 1] += int(n)
    return {k: (v[0], v[1]) for k, v in totals.items()}


async def code_stats(
    session: AsyncSession,
    code_id: int,
    *,
    start: datetime,
    end: datetime,
    tz: ZoneInfo,
    conversion_tag_id: int | None = None,
) -> CodeStats:
    """One code's numbers between `start` and `end`, days in the local zone `tz`."""
    rows = (
        await session.execute(
            select(
                ContactCodeEvent.kind, ContactCodeEvent.occurred_at, ContactCodeEvent.customer_id
            ).where(
                ContactCodeEvent.code_id == code_id,
                ContactCodeEvent.occurred_at >= start,
                ContactCodeEvent.occurred_at < end,
            )
        )
    ).all()
    per_day: dict[date, list[int]] = defaultdict(lambda: [0, 0])
    customers: set[int] = set()
    for kind, at, customer_id in rows:
        per_day[at.astimezone(tz).date()][0 if kind == "added" else 1] += 1
        if kind == "added" and customer_id is not None:
            customers.add(int(customer_id))
    converted = 0
    if conversion_tag_id is not None and customers:
        converted = int(
            await session.scalar(
                select(func.count()).where(
                    CustomerTag.tag_id == conversion_tag_id,
                    CustomerTag.customer_id.in_(sorted(customers)),
                )
            )
            or 0
        )
    days = [DayCount(d, a, lost) for d, (a, lost) in sorted(per_day.items())]
    return CodeStats(
        added=sum(d.added for d in days),
        lost=sum(d.lost for d in days),
        days=days,
        customers=len(customers),
        converted=converted,
    )


@dataclass(frozen=True)
class CodePeriod:
    """One code's customers added and lost in a period (the dashboard panel's row)."""

    code_id: int
    name: str
    state: str
    active: bool
    added: int
    lost: int

    @property
    def net(self) -> int:
        return self.added - self.lost


async def codes_in_period(
    session: AsyncSession, start: datetime, end: datetime
) -> list[CodePeriod]:
    """Every live code, and every deleted one with customers in [start, end): most
    customers added first."""
    counts: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    rows = await session.execute(
        select(ContactCodeEvent.code_id, ContactCodeEvent.kind, func.count())
        .where(ContactCodeEvent.occurred_at >= start, ContactCodeEvent.occurred_at < end)
        .group_by(ContactCodeEvent.code_id, ContactCodeEvent.kind)
    )
    for code_id, kind, n in rows.all():
        counts[int(code_id)][0 if kind == "added" else 1] += int(n)
    codes = await session.scalars(
        select(ContactCode).where(
            or_(ContactCode.status == "active", ContactCode.id.in_(sorted(counts)))
        )
    )
    found = [
        CodePeriod(
            c.id,
            c.name,
            c.state,
            c.status == "active",
            counts[c.id][0] if c.id in counts else 0,
            counts[c.id][1] if c.id in counts else 0,
        )
        for c in codes
    ]
    return sorted(found, key=lambda p: (-p.added, p.lost, p.code_id))
