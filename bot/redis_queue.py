"""`bot.queue.WorkQueue` on Redis Streams, for several worker processes (issue 10).

One stream per topic and one consumer group ("workers") per stream; every process is
one consumer in it. An item is

  delivered   XREADGROUP > (at most `concurrency` in flight per process),
  acknowledged after the consumer returns (XACK + XDEL in one MULTI, so XLEN is the
              number of items not yet done and the stream stays small),
  retried     when the consumer raises: in one script the entry is acked and put on a
              per-topic sorted set due after an exponential backoff; a mover puts due
              entries back on the stream with their attempt count,
  reclaimed   by XAUTOCLAIM once it sat unacknowledged for `claim_idle` seconds (its
              consumer crashed); a live consumer keeps its in-flight entries fresh with
              XCLAIM JUSTID, so a slow handler is not taken over,
  dead-lettered through the same `DeadLetterSink` as the in-process queue after
              `max_attempts` (a delivery to a consumer that crashed counts as one).

The store stays the system of record: items are ids, handlers are idempotent (the
message row is marked processed in the handlers' transaction), and the stream is
bounded with XADD MAXLEN ~. A publish while Redis is unreachable raises
`QueueUnavailable` (a builtin ConnectionError) so a callback can answer 503.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import socket
from collections.abc import Mapping
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from bot import log_context, metrics
from bot.queue import Consumer, DeadLetterSink
from bot.redis_state import REDIS_DOWN, open_redis, reraise_lost_cancel

log = logging.getLogger(__name__)


class QueueUnavailable(ConnectionError):
    """Redis could not take the item; the caller should make the sender retry later."""


# Settle a failed delivery: only if this consumer still owns the entry (a consumer that
# stalled past claim_idle lost it to another one, which will settle it).
# KEYS[1] stream, KEYS[2] retry zset; ARGV group, consumer, id, delay s, member json.
_RETRY_LATER = """
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #pending == 0 or pending[1][2] ~= ARGV[2] then return 0 end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
redis.call('XDEL', KEYS[1], ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[5])
return 1
"""

# Move due retries back onto the stream. KEYS[1] stream, KEYS[2] zset; ARGV maxlen, limit.
_MOVE_DUE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do
  local entry = cjson.decode(member)
  local args = {KEYS[1], 'MAXLEN', '~', ARGV[1], '*'}
  for k, v in pairs(entry.fields) do
    table.insert(args, k)
    table.insert(args, v)
  end
  redis.call('XADD', unpack(args))
  redis.call('ZREM', KEYS[2], member)
end
return #due
"""

# Reset the idle time of entries this consumer still owns (a heartbeat).
# KEYS[1] stream; ARGV group, consumer, ids...
_TOUCH = """
local touched = 0
for i = 3, #ARGV do
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if #pending == 1 and pending[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    touched = touched + 1
  end
end
return touched
"""


# `[redis]` keys an operator may set (crmbot.toml), with the type each must have.
QUEUE_OPTIONS: dict[str, type] = {
    "max_attempts": int,
    "base_delay": float,
    "max_delay": float,
    "concurrency": int,
    "claim_idle": float,
    "block": float,
    "maxlen": int,
    "prefix": str,
}


def queue_options(section: Mapping[str, Any]) -> dict[str, Any]:
    """Validate the `[redis]` settings section into RedisStreamQueue keyword arguments."""
    options: dict[str, Any] = {}
    problems: list[str] = []
    for key, value in section.items():
        kind = QUEUE_OPTIONS.get(key)
        if kind is None:
            continue  # other [redis] keys belong to other users of the section
        if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
            options[key] = float(value)
        elif isinstance(value, kind) and not isinstance(value, bool):
            options[key] = value
        else:
            problems.append(f"[redis] {key}: expected {kind.__name__}, got {value!r}")
    for key in ("max_attempts", "concurrency", "maxlen"):
        if key in options and options[key] < 1:
            problems.append(f"[redis] {key}: must be at least 1")
    for key in ("base_delay", "claim_idle", "block"):
        if key in options and options[key] <= 0:
            problems.append(f"[redis] {key}: must be positive")
    if problems:
        raise ValueError("\n".join(problems))
    return options


def default_consumer_name() -> str:
    """host-pid-random: unique per process, readable in XINFO CONSUMERS."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class RedisStreamQueue:
    """Redis Streams WorkQueue with consumer groups, reclaim and dead-lettering."""

    def __init__(
        self,
        redis: aioredis.Redis,
        dead_letter: DeadLetterSink | None = None,
        *,
        max_attempts: int = 5,
        base_delay: float = 0.5,
        max_delay: float = 300.0,
        concurrency: int = 4,
        claim_idle: float = 30.0,
        block: float = 1.0,
        maxlen: int = 100_000,
        prefix: str = "crmbot",
        group: str = "workers",
        consumer_name: str | None = None,
        owns_client: bool = False,
    ) -> None:
        self._redis = redis
        self._dead_letter = dead_letter
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.concurrency = concurrency
        self.claim_idle = claim_idle
        self.block = block
        self.maxlen = maxlen
        self.prefix = prefix
        self.group = group
        self.consumer_name = consumer_name or default_consumer_name()
        self._owns_client = owns_client
        self._retry_later = redis.register_script(_RETRY_LATER)
        self._move_due = redis.register_script(_MOVE_DUE)
        self._touch = redis.register_script(_TOUCH)

    @classmethod
    def from_url(
        cls, url: str, dead_letter: DeadLetterSink | None = None, **options: Any
    ) -> RedisStreamQueue:
        """A queue with its own client (closed by `close`)."""
        return cls(open_redis(url), dead_letter, owns_client=True, **options)

    def stream_key(self, topic: str) -> str:
        return f"{self.prefix}:queue:{topic}"

    def retry_key(self, topic: str) -> str:
        return f"{self.prefix}:queue:{topic}:retry"

    async def publish(self, topic: str, item: str) -> None:
        fields: dict[Any, Any] = {"item": item, "attempts": "0"}
        ids = log_context.snapshot()
        if ids:
            fields["ctx"] = json.dumps(ids)
        try:
            await self._redis.xadd(
                self.stream_key(topic), fields, maxlen=self.maxlen, approximate=True
            )
        except REDIS_DOWN as exc:
            raise QueueUnavailable(f"cannot queue {item} on {topic}: {exc}") from exc

    async def depth(self, topic: str) -> int:
        """Items not yet done: waiting, in flight, or waiting for a retry."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.xlen(self.stream_key(topic))
            pipe.zcard(self.retry_key(topic))
            waiting, retrying = await pipe.execute()
        return int(waiting) + int(retrying)

    async def lag(self, topic: str) -> float:
        """Seconds since the oldest item still on the stream was (re)queued."""
        oldest = await self._redis.xrange(self.stream_key(topic), count=1)
        if not oldest:
            return 0.0
        seconds, micros = await self._redis.time()
        queued_ms = int(str(oldest[0][0]).split("-")[0])
        return max(0.0, seconds + micros / 1e6 - queued_ms / 1000)

    async def consume(self, topic: str, consumer: Consumer, stop: asyncio.Event) -> None:
        await _TopicConsumer(self, topic, consumer, stop).run()

    async def ensure_group(self, topic: str) -> None:
        """Create the stream and its group (from the beginning) unless they exist."""
        try:
            await self._redis.xgroup_create(
                self.stream_key(topic), self.group, id="0", mkstream=True
            )
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def close(self) -> None:
        if self._owns_client:
            await self._redis.aclose()


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    """Sleep, but wake up at once when `stop` is set."""
    # asyncio.wait rather than wait_for/timeout: those cancel this task on expiry, and a
    # TaskGroup's cancel arriving in the same loop turn is then lost on Python 3.11
    await _wait_either(stop, seconds=seconds)


class _TopicConsumer:
    """One process's consumption of one topic: reader, maintenance and handler tasks."""

    def __init__(
        self, queue: RedisStreamQueue, topic: str, consumer: Consumer, stop: asyncio.Event
    ) -> None:
        self.q = queue
        self.redis = queue._redis
        self.topic = topic
        self.stream = queue.stream_key(topic)
        self.consumer = consumer
        self.stop = stop
        self.in_flight: set[str] = set()
        self.slot_free = asyncio.Event()
        self.slot_free.set()
        self.group: asyncio.TaskGroup | None = None

    @property
    def free(self) -> int:
        return self.q.concurrency - len(self.in_flight)

    async def run(self) -> None:
        await self._ensure_group()
        async with asyncio.TaskGroup() as group:
            self.group = group
            group.create_task(self._read_loop())
            group.create_task(self._maintenance_loop())
        # leaving the TaskGroup waited for every in-flight handler: graceful stop

    async def _ensure_group(self) -> None:
        delay = 0.1
        while not self.stop.is_set():
            try:
                await self.q.ensure_group(self.topic)
                return
            except REDIS_DOWN as exc:
                log.warning("queue %s: redis unreachable (%r); retrying", self.topic, exc)
                await _pause(self.stop, delay)
                delay = min(delay * 2, 5.0)

    async def _read_loop(self) -> None:
        delay = 0.1
        block_ms = max(1, round(self.q.block * 1000))
        while not self.stop.is_set():
            reraise_lost_cancel()
            if self.free <= 0:
                self.slot_free.clear()
                await _wait_either(self.slot_free, self.stop)
                continue
            try:
                response = await self.redis.xreadgroup(
                    self.q.group,
                    self.q.consumer_name,
                    {self.stream: ">"},
                    count=self.free,
                    block=block_ms,
                )
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                # Redis came back without its data (no persistence): start over
                log.warning("queue %s: consumer group missing; recreating", self.topic)
                await self._ensure_group()
                continue
            except REDIS_DOWN as exc:
                log.warning("queue %s: read failed (%r); retrying in %.1fs", self.topic, exc, delay)
                await _pause(self.stop, delay)
                delay = min(delay * 2, 5.0)
                continue
            delay = 0.1
            for entry_id, fields in _stream_entries(response):
                self._start(entry_id, fields, crashed_deliveries=0)

    def _start(self, entry_id: str, fields: Mapping[str, str], crashed_deliveries: int) -> None:
        if entry_id in self.in_flight or self.group is None:
            return
        handling = self._handle(entry_id, dict(fields), crashed_deliveries)
        try:
            self.group.create_task(handling)
        except RuntimeError:
            # the consumer is being cancelled; the entry stays pending for a reclaim
            handling.close()
            return
        self.in_flight.add(entry_id)

    async def _handle(self, entry_id: str, fields: dict[str, str], crashed_deliveries: int) -> None:
        item = fields.get("item", "")
        attempts = int(fields.get("attempts", "0")) + crashed_deliveries
        ids = json.loads(fields["ctx"]) if fields.get("ctx") else {}
        loop = asyncio.get_running_loop()
        try:
            with log_context.restore(ids):
                if attempts >= self.q.max_attempts:
                    # Earlier deliveries died with their consumer: a poison item, most likely.
                    await self._give_up(entry_id, item, "consumer crashed while handling", attempts)
                    return
                started = loop.time()
                try:
                    await self.consumer(item)
                except Exception as exc:  # noqa: BLE001  (a failing handler must not stop the queue)
                    attempts += 1
                    metrics.QUEUE_ITEMS.labels(topic=self.topic, outcome="error").inc()
                    log.warning(
                        "queue %s item %s failed (attempt %d): %r",
                        self.topic,
                        item,
                        attempts,
                        exc,
                    )
                    if attempts >= self.q.max_attempts:
                        await self._give_up(entry_id, item, repr(exc), attempts)
                    else:
                        await self._retry_later(entry_id, fields, attempts)
                    return
                finally:
                    metrics.QUEUE_ITEM_SECONDS.labels(topic=self.topic).observe(
                        loop.time() - started
                    )
                metrics.QUEUE_ITEMS.labels(topic=self.topic, outcome="ok").inc()
                await self._ack(entry_id)
        except Exception:  # noqa: BLE001  (one entry must not take the consumer down)
            log.exception("queue %s: settling %s failed; it stays pending", self.topic, entry_id)
        finally:
            self.in_flight.discard(entry_id)
            self.slot_free.set()

    async def _ack(self, entry_id: str) -> None:
        # Keep trying for a while: an ack lost to a Redis blip means the item is
        # reclaimed and handled again (harmless, handlers are idempotent, but wasteful).
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.q.claim_idle
        delay = 0.05
        while True:
            try:
                async with self.redis.pipeline(transaction=True) as pipe:
                    pipe.xack(self.stream, self.q.group, entry_id)
                    pipe.xdel(self.stream, entry_id)
                    await pipe.execute()
                return
            except REDIS_DOWN as exc:
                if loop.time() >= deadline:
                    log.warning(
                        "queue %s: ack of %s failed (%r); it will be reclaimed",
                        self.topic,
                        entry_id,
                        exc,
                    )
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    async def _retry_later(self, entry_id: str, fields: dict[str, str], attempts: int) -> None:
        delay = min(self.q.base_delay * 2 ** (attempts - 1), self.q.max_delay)
        member = json.dumps(
            {"id": entry_id, "fields": {**fields, "attempts": str(attempts)}}, sort_keys=True
        )
        try:
            await self.q._retry_later(
                keys=[self.stream, self.q.retry_key(self.topic)],
                args=[self.q.group, self.q.consumer_name, entry_id, repr(delay), member],
            )
        except REDIS_DOWN as exc:
            # Still pending: XAUTOCLAIM hands it out again after claim_idle.
            log.warning("queue %s: cannot schedule retry of %s (%r)", self.topic, entry_id, exc)

    async def _give_up(self, entry_id: str, item: str, error: str, attempts: int) -> None:
        log.error(
            "queue %s item %s dead-lettered after %d attempts: %s",
            self.topic,
            item,
            attempts,
            error,
        )
        metrics.DEAD_LETTERS.labels(topic=self.topic).inc()
        if self.q._dead_letter is not None:
            # Sink first, ack second: a crash in between dead-letters twice, never zero times.
            try:
                await self.q._dead_letter(self.topic, item, error, attempts)
            except Exception:  # noqa: BLE001  (the sink's store may be down too)
                log.exception(
                    "queue %s: dead-letter sink failed; %s stays pending", self.topic, item
                )
                return  # unacked: reclaimed after claim_idle and tried again
        await self._ack(entry_id)

    async def _maintenance_loop(self) -> None:
        """Move due retries back, keep in-flight entries fresh, reclaim abandoned ones."""
        loop = asyncio.get_running_loop()
        tick = max(0.02, min(self.q.claim_idle / 3, self.q.base_delay, 1.0))
        next_touch = next_reclaim = loop.time()
        while not self.stop.is_set():
            reraise_lost_cancel()
            now = loop.time()
            try:
                await self.q._move_due(
                    keys=[self.stream, self.q.retry_key(self.topic)], args=[self.q.maxlen, 100]
                )
                if now >= next_touch and self.in_flight:
                    await self.q._touch(
                        keys=[self.stream],
                        args=[self.q.group, self.q.consumer_name, *sorted(self.in_flight)],
                    )
                    next_touch = now + self.q.claim_idle / 3
                if now >= next_reclaim:
                    await self._reclaim()
                    next_reclaim = now + self.q.claim_idle / 2
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                await self._ensure_group()
            except REDIS_DOWN as exc:
                log.debug("queue %s: maintenance skipped (%r)", self.topic, exc)
            await _pause(self.stop, tick)

    async def _reclaim(self) -> None:
        start = "0-0"
        idle_ms = max(1, round(self.q.claim_idle * 1000))
        while self.free > 0 and not self.stop.is_set():
            next_start, claimed, *rest = await self.redis.xautoclaim(
                self.stream,
                self.q.group,
                self.q.consumer_name,
                min_idle_time=idle_ms,
                start_id=start,
                count=self.free,
            )
            deleted = rest[0] if rest else []
            if deleted:
                # trimmed by MAXLEN before anyone acked them; the store's unprocessed-row
                # sweep re-publishes them
                log.warning("queue %s: %d pending entries were trimmed", self.topic, len(deleted))
            for entry_id, fields in claimed:
                if fields is None:
                    continue
                deliveries = await self._deliveries(entry_id)
                metrics.QUEUE_RECLAIMED.labels(topic=self.topic).inc()
                log.warning(
                    "queue %s: reclaimed %s (%s) after %d deliveries",
                    self.topic,
                    entry_id,
                    fields.get("item"),
                    deliveries,
                )
                # this claim is one delivery; the ones before it died with their consumer
                self._start(entry_id, fields, crashed_deliveries=max(0, deliveries - 1))
            if str(next_start) == "0-0":
                return
            start = str(next_start)

    async def _deliveries(self, entry_id: str) -> int:
        rows = await self.redis.xpending_range(
            self.stream, self.q.group, min=entry_id, max=entry_id, count=1
        )
        return int(rows[0]["times_delivered"]) if rows else 1


def _stream_entries(response: Any) -> list[tuple[str, dict[str, str]]]:
    """Entries of an XREADGROUP reply ([[stream, [[id, fields], ...]], ...] in RESP2,
    the protocol `open_redis` speaks)."""
    return [
        (str(entry_id), dict(fields))
        for _stream, entries in response or []
        for entry_id, fields in entries
    ]


async def _wait_either(*events: asyncio.Event, seconds: float | None = None) -> None:
    """Return when any of `events` is set, or after `seconds`."""
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waits:
            waiter.cancel()
