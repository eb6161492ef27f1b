"""Stop PostgreSQL for 10 s: callbacks get 503 (the provider retries) instead of being
acknowledged and dropped, and the service recovers by itself."""

from __future__ import annotations

import asyncio

import pytest

from tests.faults.cluster import KEYWORD, Cluster, eventually
from tests.servers.postgres import PostgresServer

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

OUTAGE_SECONDS = 10.0


async def test_postgres_outage_answers_503_and_recovers(
    cluster: Cluster, pg_server: PostgresServer
) -> None:
    web, _worker = await asyncio.gather(cluster.start_web(), cluster.start_worker())
    users = cluster.add_customers(30)
    ids = cluster.new_msg_ids(30)
    for user, msg_id in zip(users[:10], ids[:10], strict=True):
        assert await cluster.post(web, user, f"{KEYWORD}?", msg_id) == 200

    loop = asyncio.get_running_loop()
    await asyncio.to_thread(pg_server.stop, "fast")
    down_since = loop.time()
    during: list[int] = []
    try:
        n = 10
        while loop.time() - down_since < OUTAGE_SECONDS:
            during.append(await cluster.post(web, users[n % 30], f"{KEYWORD}?", ids[n % 30]))
            n = 10 + (n - 9) % 20
            await asyncio.sleep(0.2)  # the provider's retry interval
    finally:
        await asyncio.to_thread(pg_server.start)

    assert during, "no callback was tried during the outage"
    assert set(during) == {503}, f"answers while the store was down: {set(during)}"

    # the provider keeps retrying; nothing is restarted by hand
    for user, msg_id in zip(users[10:], ids[10:], strict=True):
        await cluster.post_until_accepted(web, user, f"{KEYWORD}?", msg_id, timeout=60)

    counts: list[tuple[int, int, int]] = []

    async def all_processed() -> bool:
        counts.append(await cluster.inbound_counts())
        return counts[-1] == (30, 30, 30)

    try:
        await eventually(all_processed, timeout=90)
    except AssertionError as exc:
        raise AssertionError(f"(stored, distinct, processed) = {counts[-1]}") from exc
    assert await cluster.keyword_hits() == 30
    await eventually(lambda: _replied(cluster, 30), timeout=60)
    assert set(cluster.replies_per_user().values()) == {1}


async def _replied(cluster: Cluster, n: int) -> bool:
    return len(cluster.replies_per_user()) == n
