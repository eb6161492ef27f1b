"""Saved segments, live counts and customer ids in batches (broadcasts freeze audiences
from these). Everything is filtered in SQL; Python only pages through ids."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.db import utcnow
from conversations.models import Customer
from tagging.models import Segment

from .ast import Node, from_json, to_json, to_text
from .compiler import DEFAULT_TZ, CompileContext, Condition, compile_segment, customers_matching
from .errors import SegmentError
from .parser import parse

DEFAULT_BATCH = 1000


@dataclass(frozen=True)
class SegmentDefinition:
    """A segment as both forms: the text expression and the JSON AST."""

    node: Node

    @property
    def expression(self) -> str:
        return to_text(self.node)

    @property
    def ast(self) -> dict[str, Any]:
        return to_json(self.node)


def definition_from(expression: str | None = None, ast: Any = None) -> SegmentDefinition:
    """Read a segment from the expression text or the builder's JSON (exactly one)."""
    if (expression is None) == (ast is None):
        raise SegmentError("give either an expression or a JSON AST")
    node = parse(expression) if expression is not None else from_json(ast)
    return SegmentDefinition(node)


async def compile_definition(
    session: AsyncSession,
    definition: SegmentDefinition | Node,
    *,
    now: datetime | None = None,
    tz: tzinfo = DEFAULT_TZ,
) -> Condition:
    node = definition.node if isinstance(definition, SegmentDefinition) else definition
    return await compile_segment(node, CompileContext(session, now or utcnow(), tz))


async def count_customers(
    session: AsyncSession,
    definition: SegmentDefinition | Node,
    *,
    now: datetime | None = None,
    tz: tzinfo = DEFAULT_TZ,
) -> int:
    """Live count of the customers in a segment (the builder calls this as it changes)."""
    condition = await compile_definition(session, definition, now=now, tz=tz)
    query = customers_matching(condition, func.count())
    return int(await session.scalar(query) or 0)


async def customer_ids_page(
    session: AsyncSession,
    definition: SegmentDefinition | Node,
    *,
    after_id: int = 0,
    limit: int = DEFAULT_BATCH,
    now: datetime | None = None,
    tz: tzinfo = DEFAULT_TZ,
) -> list[int]:
    """One page of customer ids in the segment, ascending, after `after_id` (keyset paging)."""
    condition = await compile_definition(session, definition, now=now, tz=tz)
    query = (
        customers_matching(condition)
        .where(Customer.id > after_id)
        .order_by(Customer.id)
        .limit(limit)
    )
    return [int(row) for row in await session.scalars(query)]


async def iter_customer_ids(
    session: AsyncSession,
    definition: SegmentDefinition | Node,
    *,
    batch_size: int = DEFAULT_BATCH,
    now: datetime | None = None,
    tz: tzinfo = DEFAULT_TZ,
) -> AsyncIterator[list[int]]:
    """All customer ids of a segment in ascending batches; `now` is fixed for the whole run
    so relative conditions (last_contact<7d) do not drift while an audience is frozen."""
    fixed_now = now or utcnow()
    condition = await compile_definition(session, definition, now=fixed_now, tz=tz)
    after = 0
    while True:
        query = (
            customers_matching(condition)
            .where(Customer.id > after)
            .order_by(Customer.id)
            .limit(batch_size)
        )
        batch = [int(row) for row in await session.scalars(query)]
        if not batch:
            return
        yield batch
        after = batch[-1]


async def save_segment(
    session: AsyncSession,
    name: str,
    definition: SegmentDefinition,
    *,
    description: str = "",
    actor_id: int | None = None,
) -> Segment:
    """Create or update a saved segment by name; it is compiled first so a broken or
    unknown-tag segment is never saved."""
    await compile_definition(session, definition)
    segment = await session.scalar(select(Segment).where(Segment.name == name))
    now = utcnow()
    if segment is None:
        segment = Segment(name=name, created_by=actor_id, created_at=now)
        session.add(segment)
    segment.description = description
    segment.expression = definition.expression
    segment.ast = definition.ast
    segment.updated_at = now
    await session.flush()
    return segment


def definition_of(segment: Segment) -> SegmentDefinition:
    return SegmentDefinition(from_json(segment.ast))


async def refresh_count(session: AsyncSession, segment: Segment) -> int:
    """Recount a saved segment and remember the figure for the segment list."""
    count = await count_customers(session, definition_of(segment))
    segment.last_count = count
    segment.last_counted_at = utcnow()
    return count
