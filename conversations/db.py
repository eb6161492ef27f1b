"""Engine, sessions and column types shared by every package's models.

One declarative `Base` (one metadata) serves all packages so that Alembic sees the
whole schema; each package keeps its own tables in its own `models.py`.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, MetaData, event
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC, returns aware datetimes on SQLite and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; pass an aware one")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _json_dumps(value: Any) -> str:
    # Chinese stays readable in the raw column and in dumps
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def create_engine(
    url: str, *, echo: bool = False, pool_size: int = 10, sqlite_synchronous: str = "FULL"
) -> AsyncEngine:
    """Create the async engine; SQLite gets WAL, a busy timeout and foreign keys."""
    if sqlite_synchronous not in ("FULL", "NORMAL"):
        raise ValueError("sqlite_synchronous must be FULL or NORMAL")
    if url.startswith("sqlite"):
        engine = create_async_engine(
            url, echo=echo, json_serializer=_json_dumps, connect_args={"timeout": 30}
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: ConnectionPoolEntry) -> None:
            cur = dbapi_conn.cursor()
            # WAL lets the console read while the pipeline writes
            cur.execute("PRAGMA journal_mode=WAL")
            # FULL: a commit survives power loss before we acknowledge the provider
            cur.execute(f"PRAGMA synchronous={sqlite_synchronous}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_async_engine(
        url,
        echo=echo,
        json_serializer=_json_dumps,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
    )


class WriterGate:
    """SQLite's single writer, queued in-process: writers that a provider is waiting on
    (callback ingest, `urgent=True`) go before background writers (pipeline, outbox,
    jobs), so an acknowledgement never waits behind a queue of background batches —
    only behind the one transaction already writing."""

    def __init__(self) -> None:
        self._held = False
        self._urgent: deque[asyncio.Future[None]] = deque()
        self._normal: deque[asyncio.Future[None]] = deque()

    async def acquire(self, *, urgent: bool = False) -> None:
        if not self._held and not self._urgent and not self._normal:
            self._held = True
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        (self._urgent if urgent else self._normal).append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self.release()  # handed the gate as we were cancelled: pass it on
            else:
                (self._urgent if urgent else self._normal).remove(turn)
            raise

    def release(self) -> None:
        for waiting in (self._urgent, self._normal):
            while waiting:
                turn = waiting.popleft()
                if not turn.done():
                    turn.set_result(None)  # the gate passes on held
                    return
        self._held = False


class Database:
    """Owns the engine and hands out units of work (one transaction each)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessions = async_sessionmaker(engine, expire_on_commit=False)
        # SQLite has one writer: queue writers here instead of in SQLite's busy handler,
        # which sleeps in steps of up to 100 ms and ruins acknowledgement latency
        self._write_lock = WriterGate() if engine.dialect.name == "sqlite" else None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def transaction(self, *, urgent: bool = False) -> AsyncIterator[AsyncSession]:
        """One unit of work: commits on success, rolls back on any error. `urgent`: a
        provider waits for this commit (SQLite: goes before background writers)."""
        gate = self._write_lock
        if gate is None:
            async with self.sessions() as session, session.begin():
                yield session
            return
        await gate.acquire(urgent=urgent)
        try:
            async with self.sessions() as session, session.begin():
                yield session
        finally:
            gate.release()

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
