"""Live-update fan-out to every web process (the console's server-sent events).

    await fanout.publish("inbox", {"conversation_id": 7, "event": "message"})
    async for event in fanout.subscribe("inbox"): ...

`RedisFanout` implements the console's `admin_web.live.LiveBus` through Redis pub/sub and
keeps ONE subscriber connection per process, re-broadcast by the process's own
`InProcessBus` (the embedded-mode bus), so a thousand open consoles cost one Redis
connection. Live updates are hints for the browser to refresh (the store has the truth),
so a slow subscriber loses its oldest events rather than holding memory, and events
published while Redis is down are dropped with a warning.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub

from admin_web.live import QUEUE_LIMIT, InProcessBus
from bot.redis_state import REDIS_DOWN, reraise_lost_cancel

log = logging.getLogger(__name__)

Event = dict[str, Any]


class RedisFanout:
    """Fan-out across processes through Redis pub/sub (one subscriber connection)."""

    def __init__(
        self, redis: aioredis.Redis, prefix: str = "crmbot:live", buffer: int = QUEUE_LIMIT
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._changed = asyncio.Event()
        # every local subscribe/unsubscribe wakes the reader to sync Redis SUBSCRIBEs
        self._local = InProcessBus(buffer, on_change=self._changed.set)
        self._pubsub: PubSub | None = None
        self._subscribed: set[str] = set()
        self._synced = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self._closing = False

    def _key(self, channel: str) -> str:
        return f"{self._prefix}:{channel}"

    async def publish(self, channel: str, event: Event) -> None:
        try:
            await self._redis.publish(self._key(channel), json.dumps(event, ensure_ascii=False))
        except REDIS_DOWN as exc:
            log.warning("live update on %s dropped, redis unreachable: %r", channel, exc)

    def subscribe(self, channel: str) -> AsyncIterator[Event]:
        """Registered at once (like `InProcessBus`); events reach it once Redis confirmed
        the SUBSCRIBE (`wait_subscribed`)."""
        self._ensure_reader()
        return self._local.subscribe(channel)

    async def wait_subscribed(self, channel: str) -> None:
        """Wait until Redis confirmed the subscription (tests; an SSE 'ready' event);
        wrap it in asyncio.timeout."""
        while channel not in self._subscribed:
            self._synced.clear()
            await self._synced.wait()

    def _ensure_reader(self) -> None:
        if self._reader is None or self._reader.done():
            self._reader = asyncio.get_running_loop().create_task(
                self._read_forever(), name="fanout-reader"
            )

    async def _sync_subscriptions(self, pubsub: PubSub) -> None:
        wanted = self._local.channels()
        for channel in wanted - self._subscribed:
            await pubsub.subscribe(self._key(channel))
            self._subscribed.add(channel)
        for channel in self._subscribed - wanted:
            await pubsub.unsubscribe(self._key(channel))
            self._subscribed.discard(channel)
        self._synced.set()

    async def _read_forever(self) -> None:
        delay = 0.1
        while not self._closing:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            self._pubsub = pubsub
            self._subscribed = set()
            try:
                while not self._closing:
                    reraise_lost_cancel()
                    self._changed.clear()
                    await self._sync_subscriptions(pubsub)
                    if not self._subscribed:
                        await self._changed.wait()
                        continue
                    message = await pubsub.get_message(timeout=0.2)
                    delay = 0.1
                    if message is None or message.get("type") != "message":
                        continue
                    channel = str(message["channel"]).removeprefix(self._prefix + ":")
                    try:
                        event = json.loads(message["data"])
                    except (TypeError, ValueError):
                        log.warning("live update on %s is not JSON; ignored", channel)
                        continue
                    self._local.deliver(channel, event)
            except REDIS_DOWN as exc:
                # subscriptions die with the connection: start a new one and resubscribe
                log.warning("live updates: redis connection lost (%r); reconnecting", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                self._subscribed = set()
                with contextlib.suppress(*REDIS_DOWN):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped

    async def close(self) -> None:
        self._closing = True
        self._changed.set()
        await self._local.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
