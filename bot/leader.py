"""Leader election on Redis with fencing tokens (`crmbot scheduler` ×2: one fires).

    async with leadership(redis, "scheduler") as lease:
        ...  # write lease.token with every effect; stop when lease.lost is set

The lock key holds the token of its holder and expires after `ttl` unless renewed;
the holder renews it every ttl/3. Tokens come from INCR on a counter that never goes
back, so a paused ex-leader (GC, SIGSTOP, network partition) carries a smaller token
than the current one and its late writes can be refused (`Lease.is_current`, or a
unique (schedule_id, fire_time) row in the store — DESIGN.md invariant 5).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)

_REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)


def reraise_lost_cancel() -> None:
    """Raise CancelledError if this task was cancelled but a library swallowed it.

    redis-py wraps reads in asyncio.timeout; on Python 3.11 a cancel that lands while
    such a timeout expires can be lost and a loop would go on forever. The request
    stays counted in `Task.cancelling()`, so the loops honour it themselves.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError()


# KEYS[1] lock, KEYS[2] fence counter; ARGV[1] ttl ms. Returns the new token or nil.
_ACQUIRE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], token, 'PX', ARGV[1])
return token
"""

# KEYS[1] lock; ARGV[1] token, ARGV[2] ttl ms. 1 if still ours and extended.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# KEYS[1] lock; ARGV[1] token. Never deletes a lock that a newer holder took.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass
class Lease:
    """Proof of leadership: carry `token` with writes; stop work when `lost` is set."""

    name: str
    token: int
    lost: asyncio.Event = field(default_factory=asyncio.Event)
    _redis: aioredis.Redis | None = field(default=None, repr=False)
    _fence_key: str = field(default="", repr=False)

    async def is_current(self) -> bool:
        """True while no newer leader has been elected (check before a fenced write)."""
        if self.lost.is_set() or self._redis is None:
            return False
        latest = await self._redis.get(self._fence_key)
        return latest is not None and int(latest) == self.token


class _Keys:
    def __init__(self, prefix: str, name: str) -> None:
        self.lock = f"{prefix}:{name}"
        self.fence = f"{prefix}:{name}:fence"


@asynccontextmanager
async def leadership(
    redis: aioredis.Redis,
    name: str,
    *,
    ttl: float = 10.0,
    prefix: str = "crmbot:leader",
    poll: float | None = None,
) -> AsyncIterator[Lease]:
    """Wait until this process holds `name`, yield the lease, release it on exit."""
    keys = _Keys(prefix, name)
    ttl_ms = max(1, round(ttl * 1000))
    acquire = redis.register_script(_ACQUIRE)
    renew = redis.register_script(_RENEW)
    release = redis.register_script(_RELEASE)
    poll = ttl / 3 if poll is None else poll
    loop = asyncio.get_running_loop()

    delay = poll
    while True:
        try:
            token = await acquire(keys=[keys.lock, keys.fence], args=[ttl_ms])
        except _REDIS_DOWN as exc:
            log.warning("leader %s: redis unreachable while campaigning: %r", name, exc)
            token = None
            delay = min(max(delay * 2, poll), 5.0)
        else:
            delay = poll
        if token is not None:
            break
        await asyncio.sleep(delay)

    acquired_at = loop.time()
    lease = Lease(name=name, token=int(token), _redis=redis, _fence_key=keys.fence)
    log.info("leader %s: acquired with token %d", name, lease.token)

    async def keep_renewing() -> None:
        last_ok = acquired_at
        while True:
            await asyncio.sleep(ttl / 3)
            reraise_lost_cancel()
            try:
                still_ours = await renew(keys=[keys.lock], args=[lease.token, ttl_ms])
            except _REDIS_DOWN as exc:
                # The key may still be ours, but past the TTL someone else may hold it:
                # give up a little early rather than overlap.
                if loop.time() - last_ok >= ttl * 0.8:
                    log.error("leader %s: cannot renew (%r); stepping down", name, exc)
                    lease.lost.set()
                    return
                continue
            if not still_ours:
                log.error("leader %s: lease %d taken over; stepping down", name, lease.token)
                lease.lost.set()
                return
            last_ok = loop.time()

    renewer = loop.create_task(keep_renewing(), name=f"leader-renew-{name}")
    try:
        yield lease
    finally:
        renewer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewer
        if not lease.lost.is_set():
            try:
                await release(keys=[keys.lock], args=[lease.token])
            except _REDIS_DOWN as exc:
                log.warning("leader %s: release failed (%r); it expires in %.0fs", name, exc, ttl)
        lease.lost.set()
        log.info("leader %s: released token %d", name, lease.token)


async def serve_as_leader(
    redis: aioredis.Redis,
    name: str,
    work: Callable[[Lease], Awaitable[None]],
    stop: asyncio.Event,
    *,
    ttl: float = 10.0,
    prefix: str = "crmbot:leader",
) -> None:
    """Campaign, run `work(lease)` while leader, cancel it when the lease is lost, and
    campaign again; until `stop` is set (how `crmbot scheduler` runs as a standby pair)."""
    while not stop.is_set():
        campaign = asyncio.ensure_future(_lead_once(redis, name, work, stop, ttl, prefix))
        stopper = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({campaign, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
            if not campaign.done():
                campaign.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await campaign


async def _lead_once(
    redis: aioredis.Redis,
    name: str,
    work: Callable[[Lease], Awaitable[None]],
    stop: asyncio.Event,
    ttl: float,
    prefix: str,
) -> None:
    async with leadership(redis, name, ttl=ttl, prefix=prefix) as lease:
        job = asyncio.ensure_future(work(lease))
        lost = asyncio.ensure_future(lease.lost.wait())
        try:
            await asyncio.wait({job, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
            if not job.done():
                job.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await job
