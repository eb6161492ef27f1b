"""Hot reload: an edit anywhere is noticed through the version counter, the new index is
built beside the old one, and deciding never waits for it."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from autoreply import service
from autoreply.cache import EngineCache
from autoreply.engine import Engine, Facts, Outcome
from autoreply.settings import AutoReplySettings
from conversations.db import Database, utcnow


def _facts() -> Facts:
    return Facts("wecom.kf", 1, utcnow())


async def _decide(db: Database, cache: EngineCache, text: str) -> Outcome:
    async with db.reading() as s:
        snapshot = await cache.current(s)
    return snapshot.engine.decide(text, _facts()).outcome


async def test_rule_added_in_another_process_is_used_without_restart(db: Database) -> None:
    worker = EngineCache(AutoReplySettings(reload_check=timedelta(0)))
    console = EngineCache(AutoReplySettings(reload_check=timedelta(0)))
    assert await _decide(db, worker, "价格") is Outcome.HANDOFF
    async with db.transaction() as s:
        await service.create_rule(s, {"keywords": ["价格"], "replies": ["x"]}, actor_id=None)
    assert await _decide(db, worker, "价格") is Outcome.RULE
    assert console.rebuilds == 0  # only the process that decides builds


async def test_unchanged_version_does_not_rebuild(db: Database) -> None:
    cache = EngineCache(AutoReplySettings(reload_check=timedelta(0)))
    for _ in range(3):
        await _decide(db, cache, "价格")
    assert cache.rebuilds == 1


async def test_version_row_is_read_at_most_every_reload_check(db: Database) -> None:
    now = [0.0]
    cache = EngineCache(AutoReplySettings(reload_check=timedelta(seconds=5)), clock=lambda: now[0])
    await _decide(db, cache, "价格")
    async with db.transaction() as s:
        await service.create_rule(s, {"keywords": ["价格"], "replies": ["x"]}, actor_id=None)
    assert await _decide(db, cache, "价格") is Outcome.HANDOFF  # within 5 s: old index
    now[0] = 5.0
    assert await _decide(db, cache, "价格") is Outcome.RULE


async def test_deleted_rule_stops_answering(db: Database) -> None:
    cache = EngineCache(AutoReplySettings(reload_check=timedelta(0)))
    async with db.transaction() as s:
        row = await service.create_rule(s, {"keywords": ["价格"], "replies": ["x"]}, actor_id=None)
    assert await _decide(db, cache, "价格") is Outcome.RULE
    async with db.transaction() as s:
        await service.delete_rule(s, row.id, actor_id=None)
    assert await _decide(db, cache, "价格") is Outcome.HANDOFF


async def test_decisions_continue_on_old_index_during_rebuild(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = EngineCache(AutoReplySettings(reload_check=timedelta(0)))
    async with db.transaction() as s:
        await service.create_rule(s, {"keywords": ["价格"], "replies": ["x"]}, actor_id=None)
    await _decide(db, cache, "价格")
    loop = asyncio.get_running_loop()
    entered = asyncio.Event()
    release = asyncio.Event()
    real_build = Engine.build

    def held_build(*args: Any) -> Engine:
        # runs in the worker thread: report in, then wait until the test lets go
        loop.call_soon_threadsafe(entered.set)
        asyncio.run_coroutine_threadsafe(release.wait(), loop).result(timeout=10)
        return real_build(*args)

    monkeypatch.setattr(Engine, "build", staticmethod(held_build))
    async with db.transaction() as s:
        await service.create_rule(s, {"keywords": ["发货"], "replies": ["y"]}, actor_id=None)
    rebuilding = asyncio.ensure_future(_decide(db, cache, "发货"))
    await asyncio.wait_for(entered.wait(), 10)
    assert await _decide(db, cache, "价格") is Outcome.RULE  # old index still answers
    assert await _decide(db, cache, "发货") is Outcome.HANDOFF  # new rule not yet in
    release.set()
    assert await asyncio.wait_for(rebuilding, 10) is Outcome.RULE
    assert await _decide(db, cache, "发货") is Outcome.RULE
