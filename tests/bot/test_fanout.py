"""Live-update fan-out: the in-process bus and Redis pub/sub, same behaviour."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from admin_web.live import InProcessBus, LiveBus
from bot.fanout import Event, RedisFanout
from bot.redis_state import open_redis
from tests.servers.redis import RedisServer


async def _next(stream: AsyncIterator[Event]) -> Event:
    return await asyncio.wait_for(anext(stream), 5)


@pytest.fixture(params=["local", "redis"])
async def fanouts(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[LiveBus, LiveBus]]:
    """A publisher and a subscriber side (two web processes, for Redis)."""
    if request.param == "local":
        local = InProcessBus()
        yield local, local
        await local.close()
        return
    server: RedisServer = request.getfixturevalue("redis_server")
    clients = [open_redis(server.url) for _ in range(2)]
    pair = (RedisFanout(clients[0]), RedisFanout(clients[1]))
    yield pair
    for side in pair:
        await side.close()
    for c in clients:
        await c.aclose()


async def _subscribed(fanout: LiveBus, channel: str) -> AsyncIterator[Event]:
    stream = fanout.subscribe(channel)
    first = asyncio.ensure_future(anext(stream))
    if isinstance(fanout, RedisFanout):
        async with asyncio.timeout(5):
            await fanout.wait_subscribed(channel)
    return _Resume(first, stream)


class _Resume:
    """An iterator whose first item is already being awaited."""

    def __init__(self, first: asyncio.Future[Event], rest: AsyncIterator[Event]) -> None:
        self.first: asyncio.Future[Event] | None = first
        self.rest = rest

    def __aiter__(self) -> _Resume:
        return self

    async def __anext__(self) -> Event:
        if self.first is not None:
            first, self.first = self.first, None
            return await first
        return await anext(self.rest)


async def test_subscriber_receives_published_events_in_order(
    fanouts: tuple[LiveBus, LiveBus],
) -> None:
    publisher, subscriber = fanouts
    stream = await _subscribed(subscriber, "inbox")
    for n in range(3):
        await publisher.publish("inbox", {"conversation_id": n, "text": "新消息"})
    got = [await _next(stream) for _ in range(3)]
    assert got == [{"conversation_id": n, "text": "新消息"} for n in range(3)]


async def test_every_subscriber_gets_each_event(fanouts: tuple[LiveBus, LiveBus]) -> None:
    publisher, subscriber = fanouts
    a = await _subscribed(subscriber, "inbox")
    b = await _subscribed(subscriber, "inbox")
    await publisher.publish("inbox", {"n": 1})
    assert await _next(a) == await _next(b) == {"n": 1}


async def test_channels_are_separate(fanouts: tuple[LiveBus, LiveBus]) -> None:
    publisher, subscriber = fanouts
    inbox = await _subscribed(subscriber, "inbox")
    await publisher.publish("broadcast:7", {"sent": 10})
    await publisher.publish("inbox", {"n": 2})
    assert await _next(inbox) == {"n": 2}


async def test_slow_subscriber_keeps_only_the_newest_events() -> None:
    fanout = InProcessBus(buffer=2)
    stream = await _subscribed(fanout, "inbox")
    for n in range(5):
        await fanout.publish("inbox", {"n": n})
    assert [await _next(stream), await _next(stream)] == [{"n": 3}, {"n": 4}]


async def test_close_ends_open_subscriptions() -> None:
    fanout = InProcessBus()
    stream = await _subscribed(fanout, "inbox")
    await fanout.close()
    with pytest.raises(StopAsyncIteration):
        await _next(stream)


async def test_redis_publish_while_down_is_dropped_not_raised(
    redis_server: RedisServer,
) -> None:
    client = open_redis(redis_server.url)
    fanout = RedisFanout(client)
    redis_server.stop()
    try:
        await fanout.publish("inbox", {"n": 1})
    finally:
        redis_server.start()
        await fanout.close()
        await client.aclose()


async def test_redis_subscriber_resubscribes_after_a_restart(
    redis_server: RedisServer,
) -> None:
    clients = [open_redis(redis_server.url) for _ in range(2)]
    publisher, subscriber = RedisFanout(clients[0]), RedisFanout(clients[1])
    try:
        stream = await _subscribed(subscriber, "inbox")
        redis_server.stop()
        redis_server.start()
        waiting = asyncio.ensure_future(anext(stream))
        # publish until the re-subscribed reader hears one (events before that are lost)
        async with asyncio.timeout(15):
            while not waiting.done():
                await publisher.publish("inbox", {"after": "restart"})
                await asyncio.wait({waiting}, timeout=0.3)
        assert waiting.result() == {"after": "restart"}
    finally:
        await publisher.close()
        await subscriber.close()
        for c in clients:
            await c.aclose()
