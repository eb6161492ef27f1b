"""SharedState on Redis: tokens, rate-limit buckets and locks shared by every process.

Same behaviour as `channels.state.MemoryState` (tests/bot/test_redis_state.py runs one
set of behaviour tests against both). Time comes from the Redis server (`TIME`) so
processes on different hosts agree on buckets; tests may inject a clock instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.leader import leadership, reraise_lost_cancel
from channels.state import MIN_PACE_WAIT, PaceLimits

log = logging.getLogger(__name__)

# What a lost or restarting Redis raises; callers map it to "try again later".
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)

__all__ = ["REDIS_DOWN", "RedisState", "open_redis", "reraise_lost_cancel", "wait_until_reachable"]


def open_redis(
    url: str, *, connect_timeout: float = 2.0, op_timeout: float = 10.0
) -> aioredis.Redis:
    """A client with short timeouts and a small retry, so an outage surfaces quickly
    (a callback must answer 503 within the provider's window, not hang)."""
    return aioredis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=connect_timeout,
        socket_timeout=op_timeout,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=2),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        health_check_interval=30,
    )


def _lua_now(arg: int) -> str:
    """Lua: `now` in seconds from ARGV[arg], or the server's TIME when it is empty (one
    clock for every process)."""
    return f"""local now
if ARGV[{arg}] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
else
  now = tonumber(ARGV[{arg}])
end
"""


# Token bucket in one script so concurrent takers from many processes never overdraw.
# KEYS[1] bucket hash; ARGV rate, burst, cost, now (seconds; "" = use server TIME).
_TAKE = (
    """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
"""
    + _lua_now(4)
    + """local state = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(state[1])
local stamp = tonumber(state[2])
if tokens == nil then
  tokens = burst
  stamp = now
end
if now > stamp then
  tokens = math.min(burst, tokens + (now - stamp) * rate)
  stamp = now
end
local wait = 0
if tokens >= cost then
  tokens = tokens - cost
else
  wait = (cost - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(stamp))
-- an idle bucket refills completely after burst/rate seconds; keep it a little longer
redis.call('PEXPIRE', KEYS[1], math.ceil((burst / rate) * 2000) + 1000)
return tostring(wait)
"""
)


# The send gate (`SharedState.pace`, see `channels.state.PaceLimits`) in one script: the
# log is a sorted set (KEYS[1]: member = a grant sequence number, score = grant time),
# the GCRA schedule a hash (KEYS[2]: tat, seq). ARGV rate, burst, limit, window, the
# smallest wait, now ("" = server TIME). Times are written with %.17g: Lua's tostring
# keeps 14 digits, which is only 0.1 ms at epoch seconds.
_PACE = (
    """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local window = tonumber(ARGV[4])
"""
    + _lua_now(6)
    + """redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.17g', now - window))
local count = redis.call('ZCARD', KEYS[1])
local tat = tonumber(redis.call('HGET', KEYS[2], 'tat'))
if tat == nil or (count == 0 and tat <= now) then
  -- new or idle: the first slot is now, with no missed slots to make up
  tat = now + (burst - 1) / rate
end
local wait = tat - (burst - 1) / rate - now
if count >= limit then
  local edge = redis.call('ZRANGE', KEYS[1], count - limit, count - limit, 'WITHSCORES')
  wait = math.max(wait, tonumber(edge[2]) + window - now)
end
if wait > 0 then
  return string.format('%.17g', math.max(wait, tonumber(ARGV[5])))
end
tat = math.max(tat, now) + 1 / rate
local seq = redis.call('HINCRBY', KEYS[2], 'seq', 1)
redis.call('HSET', KEYS[2], 'tat', string.format('%.17g', tat))
redis.call('ZADD', KEYS[1], string.format('%.17g', now), seq)
-- both are as good as absent once the window has passed and tat lies behind
local ttl = math.ceil(math.max(window, tat - now) * 1000) + 1000
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
return '0'
"""
)


class RedisState:
    """`channels.state.SharedState` on Redis."""

    def __init__(
        self,
        redis: aioredis.Redis,
        prefix: str = "crmbot",
        clock: Callable[[], float] | None = None,
        lock_poll: float = 0.05,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._clock = clock
        self._lock_poll = lock_poll
        self._take = redis.register_script(_TAKE)
        self._pace = redis.register_script(_PACE)
        self._owns_client = False

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisState:
        """A state with its own client (closed by `close`)."""
        state = cls(open_redis(url), **options)
        state._owns_client = True
        return state

    @property
    def redis(self) -> aioredis.Redis:
        """The client, for leader election and fan-out sharing the same connection pool."""
        return self._redis

    async def close(self) -> None:
        if self._owns_client:
            await self._redis.aclose()

    def _key(self, kind: str, name: str) -> str:
        return f"{self._prefix}:{kind}:{name}"

    async def get(self, key: str) -> str | None:
        value = await self._redis.get(self._key("kv", key))
        return None if value is None else str(value)

    async def set(self, key: str, value: str, ttl: float | None = None) -> None:
        if ttl is not None and ttl <= 0:
            # already expired: same outcome as MemoryState (a later get sees nothing)
            await self.delete(key)
            return
        px = None if ttl is None else max(1, round(ttl * 1000))
        await self._redis.set(self._key("kv", key), value, px=px)

    async def delete(self, key: str) -> None:
        await self._redis.delete(self._key("kv", key))

    async def take(self, bucket: str, rate: float, burst: float, cost: float = 1.0) -> float:
        if rate <= 0:
            raise ValueError("rate must be positive")
        now = "" if self._clock is None else repr(self._clock())
        wait = await self._take(
            keys=[self._key("bucket", bucket)], args=[repr(rate), repr(burst), repr(cost), now]
        )
        return float(wait)

    async def pace(self, key: str, limits: PaceLimits) -> float:
        now = "" if self._clock is None else repr(self._clock())
        # one hash tag: both keys land on the same Redis Cluster slot, as a script needs
        base = f"{self._prefix}:pace:{{{key}}}"
        wait = await self._pace(
            keys=[f"{base}:log", f"{base}:gcra"],
            args=[
                repr(limits.rate),
                str(limits.burst),
                str(limits.limit),
                repr(limits.window),
                repr(MIN_PACE_WAIT),
                now,
            ],
        )
        return float(wait)

    def lock(self, name: str, ttl: float = 30.0) -> AbstractAsyncContextManager[None]:
        return self._lock(name, ttl)

    @asynccontextmanager
    async def _lock(self, name: str, ttl: float) -> AsyncIterator[None]:
        # The lease is renewed while the block runs, so `ttl` only bounds how long a
        # crashed holder blocks the others.
        async with leadership(
            self._redis, name, ttl=ttl, prefix=f"{self._prefix}:lock", poll=self._lock_poll
        ) as lease:
            yield
            if lease.lost.is_set():
                log.error("lock %s was lost while held (token %d)", name, lease.token)


async def wait_until_reachable(redis: aioredis.Redis) -> None:
    """Poll PING until Redis answers (process start); wrap it in asyncio.timeout."""
    delay = 0.05
    while True:
        try:
            await redis.ping()
            return
        except REDIS_DOWN as exc:
            log.info("waiting for redis: %r", exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
