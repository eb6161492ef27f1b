"""SharedState behaviour, run against MemoryState and RedisState alike: whatever an
adapter may rely on in the embedded mode must hold in the scaled mode too."""

from __future__ import annotations

import asyncio
import bisect
import math
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from bot.redis_state import RedisState, open_redis
from channels.state import MemoryState, PaceLimits, SharedState, wait_for_token
from tests.servers.redis import RedisServer


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def redis_client(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = open_redis(redis_server.url)
    await client.flushdb()
    yield client
    await client.aclose()


@pytest.fixture(params=["memory", "redis"])
def state(request: pytest.FixtureRequest, clock: FakeClock) -> SharedState:
    if request.param == "memory":
        return MemoryState(clock=clock)
    client = request.getfixturevalue("redis_client")
    return RedisState(client, clock=clock)


async def test_get_returns_what_was_set(state: SharedState) -> None:
    await state.set("token:wecom:1", "abc")
    assert await state.get("token:wecom:1") == "abc"


async def test_missing_key_reads_as_none(state: SharedState) -> None:
    assert await state.get("never-set") is None


async def test_delete_removes_the_value(state: SharedState) -> None:
    await state.set("k", "v")
    await state.delete("k")
    assert await state.get("k") is None


async def test_set_overwrites_and_clears_an_old_ttl(state: SharedState) -> None:
    await state.set("k", "old", ttl=60)
    await state.set("k", "new")
    assert await state.get("k") == "new"


async def test_value_with_unicode_survives(state: SharedState) -> None:
    await state.set("greeting", "您好，欢迎")
    assert await state.get("greeting") == "您好，欢迎"


async def test_memory_value_expires_after_ttl(clock: FakeClock) -> None:
    state = MemoryState(clock=clock)
    await state.set("k", "v", ttl=5)
    clock.advance(5.01)
    assert await state.get("k") is None


async def test_redis_value_expires_after_ttl(redis_client: aioredis.Redis) -> None:
    # Redis expires keys on its own clock: use a short real TTL and poll with a deadline
    state = RedisState(redis_client)
    await state.set("k", "v", ttl=0.05)
    async with asyncio.timeout(5):
        while await state.get("k") is not None:
            await asyncio.sleep(0.01)


async def test_value_is_kept_before_ttl(state: SharedState, clock: FakeClock) -> None:
    await state.set("k", "v", ttl=60)
    clock.advance(1)
    assert await state.get("k") == "v"


async def test_bucket_starts_full(state: SharedState) -> None:
    results = [await state.take("b", rate=1, burst=3) for _ in range(3)]
    assert results == [0.0, 0.0, 0.0]


async def test_empty_bucket_says_how_long_to_wait(state: SharedState) -> None:
    for _ in range(2):
        await state.take("b", rate=2, burst=2)
    assert await state.take("b", rate=2, burst=2) == pytest.approx(0.5)


async def test_bucket_refills_at_its_rate(state: SharedState, clock: FakeClock) -> None:
    for _ in range(2):
        await state.take("b", rate=2, burst=2)
    clock.advance(0.5)
    assert await state.take("b", rate=2, burst=2) == 0.0
    assert await state.take("b", rate=2, burst=2) > 0


async def test_bucket_never_holds_more_than_burst(state: SharedState, clock: FakeClock) -> None:
    clock.advance(3600)
    granted = [await state.take("b", rate=10, burst=3) == 0.0 for _ in range(5)]
    assert granted == [True, True, True, False, False]


async def test_buckets_are_independent(state: SharedState) -> None:
    await state.take("a", rate=1, burst=1)
    assert await state.take("b", rate=1, burst=1) == 0.0


async def test_cost_larger_than_one(state: SharedState) -> None:
    assert await state.take("b", rate=1, burst=5, cost=4) == 0.0
    assert await state.take("b", rate=1, burst=5, cost=4) == pytest.approx(3.0)


async def test_concurrent_takers_never_exceed_the_rate(
    state: SharedState, clock: FakeClock
) -> None:
    granted = 0
    for _step in range(20):
        results = await asyncio.gather(*(state.take("b", rate=5, burst=5) for _ in range(20)))
        granted += sum(1 for r in results if r == 0.0)
        clock.advance(0.1)
    # 5 at the start plus 5/s over 1.9 s of refills
    assert granted <= 5 + 5 * 1.9 + 1e-9
    assert granted >= 14


async def _hammer(
    states: list[RedisState],
    attempt: Callable[[RedisState], Awaitable[float]],
    seconds: float,
) -> tuple[int, float]:
    """Every state asks as fast as it can for `seconds`: (grants, seconds taken)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    granted = 0

    async def one(state: RedisState) -> None:
        nonlocal granted
        while loop.time() - started < seconds:
            if await attempt(state) == 0:
                granted += 1

    await asyncio.gather(*(one(s) for s in states))
    return granted, loop.time() - started


async def test_redis_bucket_shared_by_processes_never_exceeds_rate(
    redis_server: RedisServer,
) -> None:
    """Several clients (as several processes would) drain one bucket on the server clock."""
    clients = [open_redis(redis_server.url) for _ in range(4)]
    states = [RedisState(c) for c in clients]
    try:
        await clients[0].delete("crmbot:bucket:shared")
        granted, elapsed = await _hammer(
            states, lambda st: st.take("shared", rate=20, burst=5), seconds=0.5
        )
        assert granted <= 5 + 20 * elapsed + 1
        assert granted >= 5
    finally:
        for c in clients:
            await c.aclose()


async def test_wait_for_token_returns_once_granted(state: SharedState) -> None:
    await wait_for_token(state, "b", rate=100, burst=1)
    assert await state.take("b", rate=100, burst=1) > 0


async def test_lock_excludes_concurrent_holders(state: SharedState) -> None:
    inside = 0
    overlaps = 0

    async def critical() -> None:
        nonlocal inside, overlaps
        async with state.lock("refresh-token", ttl=5):
            inside += 1
            overlaps += inside > 1
            await asyncio.sleep(0.01)
            inside -= 1

    await asyncio.gather(*(critical() for _ in range(5)))
    assert overlaps == 0


async def test_lock_is_released_when_the_block_raises(state: SharedState) -> None:
    with pytest.raises(RuntimeError):
        async with state.lock("l", ttl=5):
            raise RuntimeError("boom")
    async with asyncio.timeout(2), state.lock("l", ttl=5):
        pass


async def test_redis_lock_of_a_crashed_holder_expires(redis_client: aioredis.Redis) -> None:
    # the holder "crashes": its lock key stays without renewals, and expires after ttl
    await redis_client.set("crmbot:lock:l", "999", px=200)
    state = RedisState(redis_client)
    async with asyncio.timeout(5), state.lock("l", ttl=5):
        pass


async def test_redis_lock_excludes_holders_in_other_clients(
    redis_server: RedisServer,
) -> None:
    clients = [open_redis(redis_server.url) for _ in range(3)]
    try:
        inside = 0
        overlaps = 0

        async def critical(state: RedisState) -> None:
            nonlocal inside, overlaps
            async with state.lock("cross", ttl=5):
                inside += 1
                overlaps += inside > 1
                await asyncio.sleep(0.02)
                inside -= 1

        await asyncio.gather(*(critical(RedisState(c)) for c in clients for _ in range(2)))
        assert overlaps == 0
    finally:
        for c in clients:
            await c.aclose()


# ---------------------------------------------------------------- pace (the send gate)
# a GCRA schedule at `rate` with a tolerance of `burst`, and never more than `limit`
# grants in any `window` seconds


def most_in_any_window(grants: list[float], window: float) -> int:
    """The most grants in any half-open window (t - window, t], as a provider counts."""
    ordered = sorted(grants)
    return max(
        (bisect.bisect_right(ordered, t) - bisect.bisect_right(ordered, t - window))
        for t in ordered
    )


async def pace_until_granted(
    state: SharedState, clock: FakeClock, limits: PaceLimits, lateness: Callable[[], float]
) -> float:
    """Sleep the waits `pace` asks for, each woken `lateness()` late; the grant time."""
    while (wait := await state.pace("acct", limits)) > 0:
        clock.advance(wait + lateness())
    return clock.now


async def test_pace_starts_evenly_spaced_without_a_burst(state: SharedState) -> None:
    limits = PaceLimits(rate=10.0, limit=10, window=1.025, burst=3)
    assert await state.pace("acct", limits) == 0.0
    assert await state.pace("acct", limits) == pytest.approx(0.1)


async def test_pace_waits_for_the_oldest_grant_to_leave_the_window(
    state: SharedState, clock: FakeClock
) -> None:
    limits = PaceLimits(rate=1000.0, limit=5, window=1.0, burst=5)
    for _ in range(5):
        assert await state.pace("acct", limits) == 0.0
        clock.advance(0.01)
    assert await state.pace("acct", limits) == pytest.approx(0.95)
    clock.advance(0.95)
    assert await state.pace("acct", limits) == 0.0
    assert await state.pace("acct", limits) > 0


async def test_pace_never_grants_more_than_the_limit_in_any_window(
    state: SharedState, clock: FakeClock
) -> None:
    rng = random.Random(8)
    limits = PaceLimits(rate=20.0, limit=20, window=1.025, burst=5)
    grants = []
    for _ in range(300):
        grants.append(await pace_until_granted(state, clock, limits, lambda: rng.uniform(0, 0.1)))
        # stalls and idle moments now and then, so the burst and the window both act
        if rng.random() < 0.1:
            clock.advance(rng.uniform(0, 1.5))
    assert most_in_any_window(grants, 1.025) == 20


async def test_pace_late_waker_catches_up(state: SharedState, clock: FakeClock) -> None:
    """Woken late after every wait (~1 ms, and 30 ms one time in fifty), the sender
    still gets close to the window's ceiling of limit / window."""
    rng = random.Random(6)

    def lateness() -> float:
        return rng.expovariate(1000) + (0.03 if rng.random() < 0.02 else 0.0)

    limits = PaceLimits(rate=100.0, limit=100, window=1.025, burst=25)
    grants = [await pace_until_granted(state, clock, limits, lateness) for _ in range(2000)]
    assert (len(grants) - 1) / (grants[-1] - grants[0]) >= 0.97 * 100
    assert most_in_any_window(grants, 1.025) == 100


async def test_pace_makes_up_the_slots_a_stall_missed(state: SharedState, clock: FakeClock) -> None:
    limits = PaceLimits(rate=100.0, limit=100, window=1.025, burst=25)
    await state.pace("acct", limits)
    clock.advance(0.205)  # the event loop was busy: the 20 slots up to now are due
    assert [await state.pace("acct", limits) for _ in range(20)] == [0.0] * 20
    assert await state.pace("acct", limits) > 0


async def test_pace_keeps_no_more_than_burst_missed_slots(
    state: SharedState, clock: FakeClock
) -> None:
    limits = PaceLimits(rate=100.0, limit=100, window=1.025, burst=5)
    await state.pace("acct", limits)
    clock.advance(0.2)
    assert [await state.pace("acct", limits) for _ in range(5)] == [0.0] * 5
    assert await state.pace("acct", limits) > 0


async def test_pace_keys_are_independent(state: SharedState) -> None:
    limits = PaceLimits(rate=1.0, limit=1, window=1.0)
    assert await state.pace("a", limits) == 0.0
    assert await state.pace("b", limits) == 0.0
    assert await state.pace("a", limits) > 0


async def test_pace_starts_afresh_after_an_idle_window(
    state: SharedState, clock: FakeClock
) -> None:
    limits = PaceLimits(rate=2.0, limit=2, window=1.0, burst=2)
    await pace_until_granted(state, clock, limits, lambda: 0.0)
    await pace_until_granted(state, clock, limits, lambda: 0.0)
    clock.advance(5.0)
    assert await state.pace("acct", limits) == 0.0
    assert await state.pace("acct", limits) == pytest.approx(0.5)  # no burst after idling


async def test_concurrent_pacers_never_exceed_the_limit(
    state: SharedState, clock: FakeClock
) -> None:
    limits = PaceLimits(rate=50.0, limit=50, window=1.025, burst=5)
    grants: list[float] = []
    for _step in range(300):
        results = await asyncio.gather(*(state.pace("acct", limits) for _ in range(10)))
        grants += [clock.now] * sum(1 for r in results if r == 0.0)
        clock.advance(0.01)
    assert most_in_any_window(grants, 1.025) == 50
    assert len(grants) >= 0.97 * 50 * 3.0 / 1.025


@pytest.mark.parametrize("bad", [{"rate": 0.0}, {"limit": 0}, {"window": 0.0}, {"burst": 0}])
def test_pace_limits_that_grant_nothing_are_rejected(bad: dict[str, Any]) -> None:
    fields: dict[str, Any] = {"rate": 1.0, "limit": 1, "window": 1.0} | bad
    with pytest.raises(ValueError, match="pace needs"):
        PaceLimits(**fields)


async def test_memory_pace_drops_idle_state(clock: FakeClock) -> None:
    state = MemoryState(clock=clock)
    limits = PaceLimits(rate=1.0, limit=1, window=1.0)
    await state.pace("old", limits)
    clock.advance(3600)
    await state.pace("new", limits)
    assert list(state._paces) == ["new"]  # what PEXPIRE does on Redis


async def test_redis_pace_keys_expire_when_idle(redis_client: aioredis.Redis) -> None:
    state = RedisState(redis_client)
    await state.pace("acct", PaceLimits(rate=100.0, limit=100, window=1.025, burst=25))
    for suffix in ("log", "gcra"):
        ttl = await redis_client.pttl(f"crmbot:pace:{{acct}}:{suffix}")
        assert 0 < ttl <= 1025 + 1000


async def test_redis_pacers_in_two_clients_share_one_limit(
    redis_server: RedisServer, clock: FakeClock
) -> None:
    clients = [open_redis(redis_server.url) for _ in range(2)]
    states = [RedisState(c, clock=clock) for c in clients]
    try:
        await clients[0].flushdb()
        limits = PaceLimits(rate=50.0, limit=50, window=1.025, burst=5)
        grants: list[float] = []
        for _step in range(300):
            results = await asyncio.gather(
                *(s.pace("acct", limits) for s in states for _ in range(5))
            )
            grants += [clock.now] * sum(1 for r in results if r == 0.0)
            clock.advance(0.01)
        assert most_in_any_window(grants, 1.025) == 50
    finally:
        for c in clients:
            await c.aclose()


async def test_redis_pace_on_the_server_clock_keeps_the_limit(
    redis_server: RedisServer,
) -> None:
    """Without an injected clock the script reads TIME: two clients hammering one key
    get no more than `limit` per window between them."""
    clients = [open_redis(redis_server.url) for _ in range(2)]
    states = [RedisState(c) for c in clients]
    limits = PaceLimits(rate=1000.0, limit=10, window=0.2, burst=10)
    try:
        await clients[0].flushdb()
        granted, elapsed = await _hammer(states, lambda st: st.pace("shared", limits), seconds=0.5)
        windows = elapsed / 0.2
        assert 10 <= granted <= 10 * (math.floor(windows) + 1)
    finally:
        for c in clients:
            await c.aclose()
