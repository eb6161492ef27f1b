"""Two scheduler processes: each schedule fires once, also across a kill -9 of the leader."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.faults.cluster import eventually
from tests.faults.scheduler_process import FIRES, TICK, TTL
from tests.servers.redis import RedisServer

pytestmark = [pytest.mark.slow, pytest.mark.redis]


async def test_each_schedule_fires_once_with_two_schedulers(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    redis = aioredis.from_url(redis_server.url, decode_responses=True)
    await redis.flushdb()
    procs = [_spawn(redis_server.url, tmp_path / f"s{i}.log") for i in range(2)]
    try:

        async def fires() -> list[tuple[int, int]]:
            raw = await redis.lrange(FIRES, 0, -1)
            return [(int(s), int(p)) for s, p in (x.split(":") for x in raw)]

        async def fired_at_least(n: int) -> bool:
            return len(await fires()) >= n

        await eventually(lambda: fired_at_least(10), timeout=60)
        leader_pid = (await fires())[-1][1]
        leader = next(p for p in procs if p.pid == leader_pid)
        leader.kill()  # SIGKILL: no release, the lease must expire
        leader.wait(timeout=10)
        before = len(await fires())

        async def standby_fired() -> bool:
            return any(pid != leader_pid for _slot, pid in (await fires())[before:])

        await eventually(standby_fired, timeout=30)
        await eventually(lambda: fired_at_least(before + 10), timeout=30)

        log = await fires()
        per_slot = Counter(slot for slot, _pid in log)
        assert max(per_slot.values()) == 1, "a schedule slot fired twice"
        assert {pid for _s, pid in log} == {p.pid for p in procs}
        # the takeover gap is bounded by the lease TTL (plus a renewal period)
        slots = sorted(per_slot)
        biggest_gap = max(b - a for a, b in zip(slots, slots[1:], strict=False)) * TICK
        assert biggest_gap <= TTL * 2 + 1
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                p.wait(timeout=10)
        await redis.aclose()


def _spawn(url: str, log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "tests.faults.scheduler_process", url],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
