"""Tags and their assignment to customers: manual tagging, bulk tagging (set-based SQL)
and tag history. Every function takes the caller's session (one transaction)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    String,
    bindparam,
    delete,
    exists,
    func,
    insert,
    literal,
    select,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.db import UTCDateTime, utcnow
from conversations.models import Customer

from .models import CustomerTag, Tag, TagEvent, TagGroup
from .segments.compiler import customers_matching

# ids per statement in bulk tagging: below every driver's bound-parameter limit
BULK_CHUNK = 5000
TAG_SOURCES = frozenset({"manual", "bulk", "rule", "import", "wecom", "merge"})


class TagError(ValueError):
    """A tagging request that cannot be carried out (unknown tag, bad name)."""


@dataclass(frozen=True)
class TagRef:
    """A tag named as "group/name" (意向/询价), as segments and rules write it."""

    group: str
    name: str

    @classmethod
    def parse(cls, path: str) -> TagRef:
        group, sep, name = path.partition("/")
        if not sep or not group.strip() or not name.strip():
            raise TagError(f"tag {path!r} must be written as group/name, e.g. 意向/询价")
        return cls(group.strip(), name.strip())

    def __str__(self) -> str:
        return f"{self.group}/{self.name}"


@dataclass(frozen=True)
class Why:
    """Who or what put a tag on, and why: stored on the assignment and in the history."""

    source: str
    actor_id: int | None = None
    rule_id: int | None = None
    message_id: int | None = None
    reason: str = ""

    def __post_init__(self) -> None:
        if self.source not in TAG_SOURCES:
            raise TagError(f"unknown tag source {self.source!r}")


async def create_group(
    session: AsyncSession,
    name: str,
    *,
    exclusive: bool = False,
    color: str = "#8c8c8c",
    sort: int = 0,
) -> TagGroup:
    """Create a tag group; exclusive groups allow one tag per customer (single-select)."""
    name = name.strip()
    if not name or "/" in name:
        raise TagError("a tag group name must be non-empty and contain no '/'")
    group = TagGroup(name=name, exclusive=exclusive, color=color, sort=sort)
    session.add(group)
    await session.flush()
    return group


async def create_tag(
    session: AsyncSession, group: TagGroup, name: str, *, color: str | None = None, sort: int = 0
) -> Tag:
    name = name.strip()
    if not name or "/" in name:
        raise TagError("a tag name must be non-empty and contain no '/'")
    tag = Tag(group_id=group.id, name=name, color=color, sort=sort)
    session.add(tag)
    await session.flush()
    return tag


async def ensure_tag(session: AsyncSession, ref: TagRef, *, exclusive: bool = False) -> Tag:
    """The tag named by `ref`, creating its group and itself when missing."""
    group = await session.scalar(select(TagGroup).where(TagGroup.name == ref.group))
    if group is None:
        group = await create_group(session, ref.group, exclusive=exclusive)
    tag = await session.scalar(select(Tag).where(Tag.group_id == group.id, Tag.name == ref.name))
    return tag if tag is not None else await create_tag(session, group, ref.name)


async def find_tag(session: AsyncSession, ref: TagRef) -> Tag | None:
    found: Tag | None = await session.scalar(
        select(Tag)
        .join(TagGroup, TagGroup.id == Tag.group_id)
        .where(TagGroup.name == ref.group, Tag.name == ref.name)
    )
    return found


async def _exclusive_siblings(session: AsyncSession, tag: Tag) -> list[int]:
    """Other tags of the tag's group when the group is single-select, else []."""
    group = await session.get(TagGroup, tag.group_id)
    if group is None or not group.exclusive:
        return []
    ids = await session.scalars(select(Tag.id).where(Tag.group_id == group.id, Tag.id != tag.id))
    return list(ids)


async def tag_customer(session: AsyncSession, customer_id: int, tag_id: int, why: Why) -> bool:
    """Put a tag on a customer; False if it was already there (idempotent).

    In a single-select group the customer's other tag of that group is taken off.
    """
    tag = await session.get(Tag, tag_id)
    if tag is None:
        raise TagError(f"no tag with id {tag_id}")
    if await session.get(CustomerTag, (customer_id, tag_id)) is not None:
        return False
    now = utcnow()
    for sibling in await _exclusive_siblings(session, tag):
        await untag_customer(
            session,
            customer_id,
            sibling,
            Why(why.source, why.actor_id, why.rule_id, why.message_id, f"replaced by {tag.name}"),
        )
    session.add(
        CustomerTag(
            customer_id=customer_id,
            tag_id=tag_id,
            source=why.source,
            actor_id=why.actor_id,
            rule_id=why.rule_id,
            message_id=why.message_id,
            reason=why.reason[:500],
            created_at=now,
        )
    )
    session.add(_event(customer_id, tag_id, "add", why, now))
    await session.flush()
    return True


async def untag_customer(session: AsyncSession, customer_id: int, tag_id: int, why: Why) -> bool:
    """Take a tag off a customer; False if it was not there."""
    result = await session.execute(
        delete(CustomerTag).where(
            CustomerTag.customer_id == customer_id, CustomerTag.tag_id == tag_id
        )
    )
    if not getattr(result, "rowcount", 0):
        return False
    session.add(_event(customer_id, tag_id, "remove", why, utcnow()))
    await session.flush()
    return True


def _event(customer_id: int, tag_id: int, action: str, why: Why, at: datetime) -> TagEvent:
    return TagEvent(
        customer_id=customer_id,
        tag_id=tag_id,
        action=action,
        source=why.source,
        actor_id=why.actor_id,
        rule_id=why.rule_id,
        message_id=why.message_id,
        reason=why.reason[:500],
        at=at,
    )


async def bulk_tag(
    session: AsyncSession, tag_id: int, customer_ids: Iterable[int], why: Why
) -> int:
    """Tag a list of customers with set-based statements (chunked); returns how many were new."""
    ids = sorted(set(customer_ids))
    added = 0
    for start in range(0, len(ids), BULK_CHUNK):
        chunk = ids[start : start + BULK_CHUNK]
        added += await bulk_tag_where(session, tag_id, id_in(session, Customer.id, chunk), why)
    return added


def id_in(session: AsyncSession, column: Any, ids: Sequence[int]) -> ColumnElement[bool]:
    """`column IN ids`; on PostgreSQL as `IN (SELECT unnest(array))`, one parameter:
    asyncpg prepares a statement per distinct text and preparing one with 5,000 parameters
    takes seconds, while `= ANY(array)` as a filter is checked element by element per row."""
    if session.get_bind().dialect.name == "postgresql":
        array = bindparam("ids", list(ids), type_=postgresql.ARRAY(BigInteger))
        return column.in_(select(func.unnest(array)))  # type: ignore[no-any-return]
    return column.in_(ids)  # type: ignore[no-any-return]


async def bulk_tag_where(
    session: AsyncSession, tag_id: int, condition: ColumnElement[bool], why: Why
) -> int:
    """Tag every live customer matching `condition` (a segment's compiled SQL) in three
    INSERT … SELECT / DELETE statements, never row by row; returns how many were new."""
    tag = await session.get(Tag, tag_id)
    if tag is None:
        raise TagError(f"no tag with id {tag_id}")
    now = utcnow()
    targets = customers_matching(condition).where(
        ~exists().where(CustomerTag.customer_id == Customer.id, CustomerTag.tag_id == tag_id)
    )
    siblings = await _exclusive_siblings(session, tag)
    if siblings:
        await _bulk_untag_siblings(session, siblings, targets, why, f"replaced by {tag.name}", now)
    postgres = session.get_bind().dialect.name == "postgresql"
    # PostgreSQL skips existing rows by ON CONFLICT below, not by an anti-join
    columns = (customers_matching(condition) if postgres else targets).add_columns(
        literal(tag_id, BigInteger),
        literal(why.source, String),
        literal(why.actor_id, BigInteger),
        literal(why.rule_id, BigInteger),
        literal(why.message_id, BigInteger),
        literal(why.reason[:500], String),
        literal(now, UTCDateTime()),
    )
    if postgres:
        # one statement: the rows actually inserted feed the history. (Two statements with
        # NOT EXISTS let the planner, whose statistics say a new tag has no rows, pick a
        # nested loop that grows quadratically within the transaction.)
        added = (
            postgresql.insert(CustomerTag)
            .from_select(list(_ASSIGNMENT_COLUMNS), columns)
            .on_conflict_do_nothing()
            .returning(CustomerTag.customer_id, CustomerTag.tag_id)
            .cte("added")
        )
        result = await session.execute(
            insert(TagEvent).from_select(
                list(_EVENT_COLUMNS),
                _event_select(select(added.c.customer_id, added.c.tag_id), "add", why, now),
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)
    # history first, from the same target set, so it names exactly the rows added next
    await session.execute(
        insert(TagEvent).from_select(
            list(_EVENT_COLUMNS),
            _event_select(targets.add_columns(literal(tag_id, BigInteger)), "add", why, now),
        )
    )
    result = await session.execute(
        insert(CustomerTag).from_select(list(_ASSIGNMENT_COLUMNS), columns)
    )
    return int(getattr(result, "rowcount", 0) or 0)


_ASSIGNMENT_COLUMNS = (
    "customer_id",
    "tag_id",
    "source",
    "actor_id",
    "rule_id",
    "message_id",
    "reason",
    "created_at",
)
_EVENT_COLUMNS = (
    "customer_id",
    "tag_id",
    "action",
    "source",
    "actor_id",
    "rule_id",
    "message_id",
    "reason",
    "at",
)


def _event_select(
    base: Select[int, int], action: str, why: Why, now: datetime, reason: str | None = None
) -> Select[Any]:
    return base.add_columns(
        literal(action, String),
        literal(why.source, String),
        literal(why.actor_id, BigInteger),
        literal(why.rule_id, BigInteger),
        literal(why.message_id, BigInteger),
        literal((why.reason if reason is None else reason)[:500], String),
        literal(now, UTCDateTime()),
    )


async def _bulk_untag_siblings(
    session: AsyncSession,
    siblings: Sequence[int],
    targets: Select[Any],
    why: Why,
    reason: str,
    now: datetime,
) -> None:
    removed = select(CustomerTag.customer_id, CustomerTag.tag_id).where(
        CustomerTag.tag_id.in_(siblings), CustomerTag.customer_id.in_(targets)
    )
    await session.execute(
        insert(TagEvent).from_select(
            list(_EVENT_COLUMNS), _event_select(removed, "remove", why, now, reason)
        )
    )
    await session.execute(
        delete(CustomerTag).where(
            CustomerTag.tag_id.in_(siblings), CustomerTag.customer_id.in_(targets)
        )
    )


async def bulk_untag(
    session: AsyncSession, tag_id: int, customer_ids: Iterable[int], why: Why
) -> int:
    """Take a tag off a list of customers, recording history; returns how many had it."""
    ids = sorted(set(customer_ids))
    removed = 0
    now = utcnow()
    for start in range(0, len(ids), BULK_CHUNK):
        chunk = ids[start : start + BULK_CHUNK]
        having = select(CustomerTag.customer_id, CustomerTag.tag_id).where(
            CustomerTag.tag_id == tag_id, id_in(session, CustomerTag.customer_id, chunk)
        )
        await session.execute(
            insert(TagEvent).from_select(
                list(_EVENT_COLUMNS), _event_select(having, "remove", why, now)
            )
        )
        result = await session.execute(
            delete(CustomerTag).where(
                CustomerTag.tag_id == tag_id, id_in(session, CustomerTag.customer_id, chunk)
            )
        )
        removed += int(getattr(result, "rowcount", 0) or 0)
    return removed


@dataclass(frozen=True)
class AssignedTag:
    tag_id: int
    group: str
    name: str
    color: str
    source: str
    reason: str
    message_id: int | None
    created_at: datetime


async def tags_of(session: AsyncSession, customer_id: int) -> list[AssignedTag]:
    """A customer's tags with their group, colour and why they are there."""
    rows = await session.execute(
        select(CustomerTag, Tag, TagGroup)
        .join(Tag, Tag.id == CustomerTag.tag_id)
        .join(TagGroup, TagGroup.id == Tag.group_id)
        .where(CustomerTag.customer_id == customer_id)
        .order_by(TagGroup.sort, TagGroup.id, Tag.sort, Tag.id)
    )
    return [
        AssignedTag(
            tag_id=tag.id,
            group=group.name,
            name=tag.name,
            color=tag.color or group.color,
            source=ct.source,
            reason=ct.reason,
            message_id=ct.message_id,
            created_at=ct.created_at,
        )
        for ct, tag, group in rows
    ]


async def tag_history(session: AsyncSession, customer_id: int, limit: int = 200) -> list[TagEvent]:
    """The customer's tag adds and removes, newest first."""
    rows = await session.scalars(
        select(TagEvent)
        .where(TagEvent.customer_id == customer_id)
        .order_by(TagEvent.id.desc())
        .limit(limit)
    )
    return list(rows)
