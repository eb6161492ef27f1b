"""Statistics for the console's charts: plain lists of (label, count), computed in SQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.models import Customer

from .models import CustomerFieldValue, CustomerHobby, CustomerProfile, CustomerTag, Tag, TagGroup

UNKNOWN = "unknown"
DIMENSIONS: dict[str, Any] = {
    "province": CustomerProfile.province,
    "city": CustomerProfile.city,
    "gender": CustomerProfile.gender,
    "age_bracket": CustomerProfile.age_bracket,
    "occupation": CustomerProfile.occupation,
    "intent": CustomerProfile.intent_level,
    "abc": CustomerProfile.abc_class,
    "rfm_r": CustomerProfile.rfm_r,
    "rfm_f": CustomerProfile.rfm_f,
    "rfm_m": CustomerProfile.rfm_m,
    "first_channel": Customer.first_channel,
}


@dataclass(frozen=True)
class Bucket:
    label: str
    count: int


_live = Customer.merged_into_id.is_(None)


async def distribution(session: AsyncSession, dimension: str, limit: int = 50) -> list[Bucket]:
    """Live customers per value of a profile dimension; customers without a value are
    counted under "unknown" so the buckets add up to the customer count."""
    if dimension == "hobby":
        return await _hobby_distribution(session, limit)
    column = DIMENSIONS.get(dimension)
    if column is None:
        raise ValueError(f"unknown dimension {dimension!r}; known: {', '.join(DIMENSIONS)}, hobby")
    rows = await session.execute(
        select(column, func.count())
        .select_from(Customer)
        .outerjoin(CustomerProfile, CustomerProfile.customer_id == Customer.id)
        .where(_live)
        .group_by(column)
        .order_by(func.count().desc())
    )
    buckets = [Bucket(UNKNOWN if value is None else str(value), int(n)) for value, n in rows]
    return _top(buckets, limit)


def _top(buckets: list[Bucket], limit: int) -> list[Bucket]:
    if len(buckets) <= limit:
        return buckets
    rest = sum(b.count for b in buckets[limit - 1 :])
    return [*buckets[: limit - 1], Bucket("other", rest)]


async def _hobby_distribution(session: AsyncSession, limit: int) -> list[Bucket]:
    rows = await session.execute(
        select(CustomerHobby.hobby, func.count())
        .join(Customer, Customer.id == CustomerHobby.customer_id)
        .where(_live)
        .group_by(CustomerHobby.hobby)
        .order_by(func.count().desc())
        .limit(limit)
    )
    return [Bucket(hobby, int(n)) for hobby, n in rows]


async def tag_group_distribution(session: AsyncSession, group_id: int) -> list[Bucket]:
    """Live customers per tag of one group (a customer counts once per tag they have)."""
    rows = await session.execute(
        select(Tag.name, func.count(CustomerTag.customer_id))
        .select_from(Tag)
        .outerjoin(CustomerTag, CustomerTag.tag_id == Tag.id)
        .outerjoin(Customer, Customer.id == CustomerTag.customer_id)
        .where(Tag.group_id == group_id, (Customer.id.is_(None)) | _live)
        .group_by(Tag.id, Tag.name, Tag.sort)
        .order_by(Tag.sort, Tag.id)
    )
    return [Bucket(name, int(n)) for name, n in rows]


async def tag_groups_overview(session: AsyncSession) -> list[tuple[str, list[Bucket]]]:
    groups = (
        await session.execute(
            select(TagGroup.id, TagGroup.name).order_by(TagGroup.sort, TagGroup.id)
        )
    ).all()
    return [(name, await tag_group_distribution(session, gid)) for gid, name in groups]


async def custom_field_distribution(
    session: AsyncSession, field_id: int, limit: int = 50
) -> list[Bucket]:
    """Customers per value of a text/choice custom field."""
    rows = await session.execute(
        select(CustomerFieldValue.value_text, func.count())
        .join(Customer, Customer.id == CustomerFieldValue.customer_id)
        .where(CustomerFieldValue.field_id == field_id, _live)
        .group_by(CustomerFieldValue.value_text)
        .order_by(func.count().desc())
    )
    return _top([Bucket(UNKNOWN if v is None else v, int(n)) for v, n in rows], limit)


async def new_customers_per_day(
    session: AsyncSession, start: date, end: date, tz: tzinfo
) -> list[Bucket]:
    """New customers per local day from start to end inclusive, zero days included."""
    begin = datetime.combine(start, time(), tz).astimezone(UTC)
    finish = datetime.combine(end + timedelta(days=1), time(), tz).astimezone(UTC)
    if session.get_bind().dialect.name == "postgresql":
        zone = getattr(tz, "key", "UTC")
        day: Any = func.date(func.timezone(zone, Customer.created_at))
    else:
        # SQLite has no zone data: shift by the zone's offset on the first day (exact for
        # zones without daylight saving, such as Asia/Shanghai)
        offset = datetime.combine(start, time(12), tz).utcoffset() or timedelta()
        day = func.date(Customer.created_at, f"{int(offset.total_seconds() // 60):+d} minutes")
    rows = await session.execute(
        select(day, func.count())
        .where(Customer.created_at >= begin, Customer.created_at < finish)
        .group_by(day)
    )
    counts = {str(d): int(n) for d, n in rows}
    days = (end - start).days + 1
    return [
        Bucket(
            (start + timedelta(days=i)).isoformat(),
            counts.get((start + timedelta(days=i)).isoformat(), 0),
        )
        for i in range(days)
    ]
