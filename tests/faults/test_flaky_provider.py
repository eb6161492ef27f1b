"""A provider failing or timing out 20% of the time: every outbound message ends
delivered or failed-with-reason, none stuck, none sent twice."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from sqlalchemy import select

from conversations.models import OutboxItem
from tests.faults.cluster import (
    KEYWORD,
    Cluster,
    drop_connection,
    eventually,
    start_cluster,
    stop_cluster,
)
from tests.servers.redis import RedisServer

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

N = 40
TERMINAL = {"sent", "delivered", "read", "failed"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class FlakyProvider:
    """In front of the simulator's message/send: 10% errors (-1 系统繁忙), 5% dropped
    before sending, 5% dropped after sending (delivered, but the answer is lost)."""

    def __init__(self, seed: int = 20) -> None:
        self.rng = random.Random(seed)
        self.injected: Counter[str] = Counter()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path != "/cgi-bin/message/send":
            return await handler(request)
        roll = self.rng.random()
        if roll < 0.10:
            self.injected["error"] += 1
            return web.json_response({"errcode": -1, "errmsg": "system busy"})
        if roll < 0.15:
            self.injected["timeout_before"] += 1
            drop_connection(request)
            raise web.HTTPServiceUnavailable()  # never reaches the client
        if roll < 0.20:
            self.injected["timeout_after"] += 1
            await handler(request)
            drop_connection(request)
            raise web.HTTPServiceUnavailable()
        return await handler(request)


@pytest.fixture
async def flaky_cluster(tmp_path: Path, pg_database: str, redis_server: RedisServer):  # type: ignore[no-untyped-def]
    import redis.asyncio as aioredis

    flush = aioredis.from_url(redis_server.url)
    await flush.flushdb()
    await flush.aclose()
    provider = FlakyProvider()
    running = await start_cluster(
        tmp_path, pg_database, redis_server.url, sim_middlewares=[provider.middleware]
    )
    try:
        yield running, provider
    finally:
        print(running.logs())  # noqa: T201
        await stop_cluster(running)


async def test_every_outbound_ends_sent_or_failed_once(
    flaky_cluster: tuple[Cluster, FlakyProvider],
) -> None:
    cluster, provider = flaky_cluster
    web_proc, _worker = await asyncio.gather(cluster.start_web(), cluster.start_worker())
    users = cluster.add_customers(N)
    for user, msg_id in zip(users, cluster.new_msg_ids(N), strict=True):
        await cluster.post_until_accepted(web_proc, user, f"{KEYWORD}怎么算", msg_id)

    async def all_settled() -> bool:
        statuses = await cluster.outbox_statuses()
        return sum(statuses.values()) == N and set(statuses) <= TERMINAL

    await eventually(all_settled, timeout=120)
    assert sum(provider.injected.values()) > 0, "no fault was injected"
    async with cluster.db.reading() as s:
        rows = (
            await s.execute(select(OutboxItem.recipient, OutboxItem.status, OutboxItem.last_error))
        ).all()
    failed_without_reason = [r for r in rows if r.status == "failed" and not r.last_error]
    assert failed_without_reason == []
    sent_to = {r.recipient for r in rows if r.status != "failed"}
    replies = cluster.replies_per_user()
    assert set(replies.values()) <= {1}, "a reply reached a user twice"
    assert sent_to <= set(replies), "a row is marked sent but the provider never got it"
