"""Kill -9 a worker mid-batch: its pending messages are reclaimed and processed once."""

from __future__ import annotations

import asyncio

import pytest

from tests.faults.cluster import KEYWORD, Cluster, eventually

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

N = 60


async def test_killed_workers_messages_are_reclaimed_and_processed_once(cluster: Cluster) -> None:
    web, doomed, survivor = await asyncio.gather(
        cluster.start_web(), cluster.start_worker(), cluster.start_worker()
    )
    users = cluster.add_customers(N)
    ids = cluster.new_msg_ids(N)
    gate = asyncio.Semaphore(10)

    async def send(user: str, msg_id: int) -> None:
        async with gate:
            await cluster.post_until_accepted(web, user, f"请问{KEYWORD}多少？", msg_id)

    posting = asyncio.gather(*(send(u, i) for u, i in zip(users, ids, strict=True)))

    async def doomed_is_busy() -> bool:
        consumer = await cluster.consumer_of(doomed)
        return bool(consumer and consumer["pending"] > 0)

    await eventually(doomed_is_busy, timeout=60)
    doomed.kill9()
    orphaned = await cluster.consumer_of(doomed)
    assert orphaned is not None and orphaned["pending"] > 0, "nothing was in flight at the kill"
    await posting

    async def all_processed() -> bool:
        stored, distinct, processed = await cluster.inbound_counts()
        return stored == distinct == processed == N

    await eventually(all_processed, timeout=90)
    await eventually(lambda: _no_pending(cluster), timeout=30)
    assert await cluster.keyword_hits() == N  # every message's handlers ran exactly once
    await eventually(lambda: _all_replied(cluster), timeout=60)
    assert set(cluster.replies_per_user().values()) == {1}
    assert survivor.popen.poll() is None


async def _no_pending(cluster: Cluster) -> bool:
    return await cluster.pending_total() == 0


async def _all_replied(cluster: Cluster) -> bool:
    return len(cluster.replies_per_user()) == N
