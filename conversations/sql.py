"""Dialect-aware statements the store needs on both SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session


async def insert_ignore_returning_id(
    session: AsyncSession,
    table: Table,
    values: Mapping[str, Any],
    conflict_columns: Sequence[str],
) -> int | None:
    """INSERT … ON CONFLICT DO NOTHING RETURNING id: the new id, or None if it existed.

    One round trip and no savepoint, so a duplicate costs as little as a read.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        stmt_pg = (
            postgresql.insert(table)
            .values(**values)
            .on_conflict_do_nothing(index_elements=list(conflict_columns))
            .returning(table.c.id)
        )
        new_id: int | None = (await session.execute(stmt_pg)).scalar_one_or_none()
        return new_id
    stmt = (
        sqlite.insert(table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=list(conflict_columns))
        .returning(table.c.id)
    )
    found: int | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


def insert_ignore_returning_id_sync(
    session: Session,
    table: Table,
    values: Mapping[str, Any],
    conflict_columns: Sequence[str],
) -> int | None:
    """`insert_ignore_returning_id` for a synchronous session."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = (
        insert(table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=list(conflict_columns))
        .returning(table.c.id)
    )
    found: int | None = session.execute(stmt).scalar_one_or_none()
    return found
