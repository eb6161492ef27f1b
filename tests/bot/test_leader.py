"""Leader election on a real redis-server: one leader at a time, fencing tokens only
grow, a crashed leader is replaced after its TTL, a usurped leader learns it lost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from bot.leader import Lease, leadership, serve_as_leader
from bot.redis_state import open_redis
from tests.servers.redis import RedisServer

pytestmark = pytest.mark.redis


@pytest.fixture
async def clients(redis_server: RedisServer) -> AsyncIterator[list[aioredis.Redis]]:
    """Two clients, as two scheduler processes would have."""
    pair = [open_redis(redis_server.url) for _ in range(2)]
    await pair[0].flushdb()
    yield pair
    for c in pair:
        await c.aclose()


async def test_only_one_of_two_contenders_fires(clients: list[aioredis.Redis]) -> None:
    stop = asyncio.Event()
    fired: list[tuple[str, int]] = []
    leading = asyncio.Event()

    def scheduler(name: str):  # type: ignore[no-untyped-def]
        async def work(lease: Lease) -> None:
            fired.append((name, lease.token))
            leading.set()
            await asyncio.Event().wait()  # fires schedules until cancelled

        return work

    runs = [
        asyncio.ensure_future(serve_as_leader(c, "scheduler", scheduler(f"s{i}"), stop, ttl=1))
        for i, c in enumerate(clients)
    ]
    await asyncio.wait_for(leading.wait(), 10)
    # several renewal periods: the standby must stay a standby
    for _ in range(6):
        await asyncio.sleep(0.25)
    stop.set()
    await asyncio.wait_for(asyncio.gather(*runs), 10)
    assert len(fired) == 1


async def test_standby_takes_over_when_the_leader_crashes(
    clients: list[aioredis.Redis],
) -> None:
    first, second = clients
    # what a leader killed with -9 leaves behind: its key, no renewals, no release
    crashed_token = await first.incr("crmbot:leader:scheduler:fence")
    await first.set("crmbot:leader:scheduler", str(crashed_token), px=500)
    async with asyncio.timeout(10), leadership(second, "scheduler", ttl=0.5) as lease:
        assert lease.token > crashed_token


async def test_tokens_increase_with_every_new_leader(clients: list[aioredis.Redis]) -> None:
    tokens = []
    for client in clients * 2:
        async with leadership(client, "scheduler", ttl=5) as lease:
            tokens.append(lease.token)
    assert tokens == sorted(tokens)
    assert len(set(tokens)) == 4


async def test_release_lets_the_next_contender_in_at_once(
    clients: list[aioredis.Redis],
) -> None:
    async with leadership(clients[0], "scheduler", ttl=30):
        pass
    async with asyncio.timeout(2), leadership(clients[1], "scheduler", ttl=30, poll=0.05):
        pass


async def test_leader_learns_it_was_usurped(clients: list[aioredis.Redis]) -> None:
    async with leadership(clients[0], "scheduler", ttl=0.3) as lease:
        assert await lease.is_current()
        # an operator (or a partition plus expiry) hands the lock to someone else
        await clients[1].set("crmbot:leader:scheduler", "999999")
        await clients[1].incr("crmbot:leader:scheduler:fence")
        await asyncio.wait_for(lease.lost.wait(), 5)
        assert not await lease.is_current()


async def test_stale_token_is_not_current_after_a_new_election(
    clients: list[aioredis.Redis],
) -> None:
    async with leadership(clients[0], "scheduler", ttl=5) as old:
        pass
    async with leadership(clients[1], "scheduler", ttl=5) as new:
        assert await new.is_current()
        assert not await old.is_current()


async def test_leader_keeps_the_lease_past_its_ttl_by_renewing(
    clients: list[aioredis.Redis],
) -> None:
    async with leadership(clients[0], "scheduler", ttl=0.3) as lease:
        for _ in range(5):
            await asyncio.sleep(0.2)  # a whole TTL and more passes
        assert not lease.lost.is_set()
        assert await lease.is_current()
        assert await clients[1].get("crmbot:leader:scheduler") == str(lease.token)
