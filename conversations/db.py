"""Engine, sessions and column types shared by every package's models.

One declarative `Base` (one metadata) serves all packages so that Alembic sees the
whole schema; each package keeps its own tables in its own `models.py`.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

from sqlalchemy import JSON, DateTime, MetaData, event
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.types import TypeDecorator

T = TypeVar("T")

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


class _SqlitePragmas:
    """Per-connection settings of a SQLite store (the async engine and its thread twin)."""

    def __init__(self, synchronous: str) -> None:
        self.synchronous = synchronous

    def __call__(self, dbapi_conn: Any, _record: ConnectionPoolEntry) -> None:
        cur = dbapi_conn.cursor()
        # WAL lets the console read while the pipeline writes
        cur.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit survives power loss before we acknowledge the provider
        cur.execute(f"PRAGMA synchronous={self.synchronous}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()


# async SQLite engine → its pragmas, for the synchronous twin `Database.write_in_thread` uses
_SQLITE_PRAGMAS: WeakKeyDictionary[Engine, _SqlitePragmas] = WeakKeyDictionary()


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
        pragmas = _SqlitePragmas(sqlite_synchronous)
        event.listen(engine.sync_engine, "connect", pragmas)
        _SQLITE_PRAGMAS[engine.sync_engine] = pragmas
        return engine
    return create_async_engine(
        url,
        echo=echo,
        json_serializer=_json_dumps,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
    )


def _thread_twin(engine: AsyncEngine) -> Engine:
    """A synchronous engine on the same SQLite file, with the same pragmas."""
    twin = create_sync_engine(
        engine.url.set(drivername="sqlite"),
        json_serializer=_json_dumps,
        connect_args={"timeout": 30, "check_same_thread": False},
    )
    event.listen(twin, "connect", _SQLITE_PRAGMAS.get(engine.sync_engine, _SqlitePragmas("FULL")))
    event.listen(twin, "connect", _rare_checkpoints)
    return twin


def _rare_checkpoints(dbapi_conn: Any, _record: ConnectionPoolEntry) -> None:
    # the commit that crosses SQLite's WAL threshold copies the log into the database
    # (tens of ms, with the provider waiting): leave that to the background writers,
    # whose commits cross the default 1,000 pages first; this bound only keeps the log
    # from growing without end when callbacks are the only writer
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA wal_autocheckpoint=20000")
    cur.close()


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
        self._thread_sessions: sessionmaker[Session] | None = None

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

    async def write_in_thread(self, work: Callable[[Session], T], *, urgent: bool = False) -> T:
        """Run synchronous `work` as one unit of work (commit on success).

        SQLite: on a worker thread over a synchronous connection, the whole unit in one
        hop. aiosqlite makes every statement four round trips between the event loop and
        its thread (cursor, execute, fetch, close), and each waits for the loop to come
        round again; under a burst of callbacks that wait, not SQLite, set the pace.
        Other stores: the async session's `run_sync` (asyncpg has no thread to hop to).
        """
        gate = self._write_lock
        if gate is None or self.engine.url.database in (None, "", ":memory:"):
            # (an in-memory SQLite database exists once per connection: no twin for it)
            async with self.transaction(urgent=urgent) as session:
                return await session.run_sync(work)
        await gate.acquire(urgent=urgent)
        job = asyncio.ensure_future(asyncio.to_thread(self._unit_in_thread, work))
        try:
            return await asyncio.shield(job)
        finally:
            if job.done():
                gate.release()
            else:  # cancelled while the thread writes: the gate stays taken until it ends
                job.add_done_callback(lambda _job: gate.release())

    def _unit_in_thread(self, work: Callable[[Session], T]) -> T:
        if self._thread_sessions is None:
            self._thread_sessions = sessionmaker(_thread_twin(self.engine), expire_on_commit=False)
        with self._thread_sessions() as session, session.begin():
            return work(session)

    async def dispose(self) -> None:
        if self._thread_sessions is not None:
            bind = self._thread_sessions.kw["bind"]
            await asyncio.to_thread(bind.dispose)
        await self.engine.dispose()
