"""Database.write_in_thread: a synchronous unit of work (SQLite on a worker thread)."""

from __future__ import annotations

import asyncio
import threading

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from conversations.db import Database
from conversations.models import ChannelAccount


def _add_account(session: Session, token: str) -> int:
    account = ChannelAccount(kind="wecom.app", name="app", callback_token=token)
    session.add(account)
    session.flush()
    return account.id


async def _accounts(db: Database) -> int:
    async with db.reading() as s:
        return int(await s.scalar(select(func.count()).select_from(ChannelAccount)) or 0)


async def test_work_commits_and_its_result_comes_back(db: Database) -> None:
    new_id = await db.write_in_thread(lambda s: _add_account(s, "a"), urgent=True)
    async with db.reading() as s:
        assert (await s.get(ChannelAccount, new_id)) is not None


async def test_work_that_raises_leaves_nothing_behind(db: Database) -> None:
    def half_done(session: Session) -> None:
        _add_account(session, "b")
        raise RuntimeError("provider payload broke the handler")

    with pytest.raises(RuntimeError):
        await db.write_in_thread(half_done)
    assert await _accounts(db) == 0
    await db.write_in_thread(lambda s: _add_account(s, "c"))  # the store is still usable
    assert await _accounts(db) == 1


async def test_sqlite_work_runs_off_the_event_loop_thread(sqlite_db: Database) -> None:
    loop_thread = threading.get_ident()
    ran_on = await sqlite_db.write_in_thread(lambda _s: threading.get_ident())
    assert ran_on != loop_thread


async def test_the_writer_gate_waits_for_the_thread_even_if_the_caller_is_cancelled(
    sqlite_db: Database,
) -> None:
    started, finish = threading.Event(), threading.Event()

    def slow(session: Session) -> None:
        started.set()
        finish.wait(10)
        _add_account(session, "slow")

    writer = asyncio.create_task(sqlite_db.write_in_thread(slow))
    await asyncio.to_thread(started.wait, 10)
    writer.cancel()
    follower = asyncio.create_task(sqlite_db.write_in_thread(lambda s: _add_account(s, "next")))
    await asyncio.sleep(0.05)
    assert not follower.done()  # the cancelled unit still holds the single writer slot
    finish.set()
    await asyncio.wait_for(follower, 10)
    assert await _accounts(sqlite_db) == 2


async def test_an_in_memory_store_runs_the_work_in_its_own_session() -> None:
    from conversations.db import create_engine
    from conversations.models import Base

    db = Database(create_engine("sqlite+aiosqlite:///:memory:"))
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        new_id = await db.write_in_thread(lambda s: _add_account(s, "m"))
        async with db.reading() as s:
            assert (await s.get(ChannelAccount, new_id)) is not None
    finally:
        await db.dispose()


async def test_callback_commits_leave_wal_checkpoints_to_background_writers(
    sqlite_db: Database,
) -> None:
    def pages(session: Session) -> int:
        return int(session.execute(text("PRAGMA wal_autocheckpoint")).scalar_one())

    async with sqlite_db.reading() as s:
        background = (await s.execute(text("PRAGMA wal_autocheckpoint"))).scalar_one()
    assert await sqlite_db.write_in_thread(pages) == 20000
    assert background == 1000  # SQLite's default: these commits checkpoint first
