"""Restart redis-server during ingest: callbacks are still acknowledged only after the
store committed them, and nothing is lost once Redis is back."""

from __future__ import annotations

import asyncio

import pytest

from tests.faults.cluster import KEYWORD, Cluster, eventually
from tests.servers.redis import RedisServer

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

N = 60


async def test_redis_restart_during_ingest_loses_nothing(
    cluster: Cluster, redis_server: RedisServer
) -> None:
    web, _worker = await asyncio.gather(cluster.start_web(), cluster.start_worker())
    users = cluster.add_customers(N)
    ids = cluster.new_msg_ids(N)
    statuses: dict[int, list[int]] = {}
    gate = asyncio.Semaphore(5)

    async def send(user: str, msg_id: int) -> None:
        async with gate:
            statuses[msg_id] = await cluster.post_until_accepted(
                web, user, f"{KEYWORD}是多少", msg_id
            )

    first, rest = list(zip(users, ids, strict=True))[:20], list(zip(users, ids, strict=True))[20:]
    await asyncio.gather(*(send(u, i) for u, i in first))
    redis_server.stop()
    try:
        # ingest goes on while Redis is down: the store is the system of record
        await asyncio.gather(*(send(u, i) for u, i in rest[:20]))
    finally:
        redis_server.start()
    await asyncio.gather(*(send(u, i) for u, i in rest[20:]))

    # every 200 was given after the commit: each acknowledged message is in the store
    stored, distinct, _processed = await cluster.inbound_counts()
    assert stored == distinct == N

    async def all_processed() -> bool:
        return (await cluster.inbound_counts())[2] == N

    await eventually(all_processed, timeout=90)
    assert await cluster.keyword_hits() == N
    await eventually(lambda: _all_replied(cluster), timeout=60)
    assert set(cluster.replies_per_user().values()) == {1}


async def _all_replied(cluster: Cluster) -> bool:
    return len(cluster.replies_per_user()) == N
