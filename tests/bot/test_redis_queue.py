"""RedisStreamQueue against a real redis-server: ack, retry, dead-letter, reclaim after a
consumer crash, Redis restarts, bounded streams."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from bot import log_context
from bot.redis_queue import QueueUnavailable, RedisStreamQueue, queue_options
from bot.redis_state import open_redis
from tests.servers.redis import RedisServer

pytestmark = pytest.mark.redis

DeadLetter = tuple[str, str, str, int]


@pytest.fixture
async def redis_client(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = open_redis(redis_server.url)
    await client.flushdb()
    yield client
    await client.aclose()


@pytest.fixture
def dead() -> list[DeadLetter]:
    return []


@pytest.fixture
def make_queue(
    redis_client: aioredis.Redis, dead: list[DeadLetter]
) -> Callable[..., RedisStreamQueue]:
    async def sink(topic: str, item: str, error: str, attempts: int) -> None:
        dead.append((topic, item, error, attempts))

    def make(**options: Any) -> RedisStreamQueue:
        defaults: dict[str, Any] = {
            "max_attempts": 3,
            "base_delay": 0.02,
            "claim_idle": 0.3,
            "block": 0.1,
        }
        return RedisStreamQueue(redis_client, sink, **{**defaults, **options})

    return make


class Running:
    """A consume() loop in a task, stoppable like a worker process."""

    def __init__(self, queue: RedisStreamQueue, topic: str, consumer: Any) -> None:
        self.stop = asyncio.Event()
        self.task = asyncio.ensure_future(queue.consume(topic, consumer, self.stop))

    async def finish(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 10)

    async def crash(self) -> None:
        """Die without acking anything in flight (like kill -9)."""
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def until(
    check: Callable[[], bool] | Callable[[], Awaitable[bool]], timeout: float = 10
) -> None:
    async with asyncio.timeout(timeout):
        while True:
            result = check()
            if not isinstance(result, bool):
                result = await result
            if result:
                return
            await asyncio.sleep(0.01)


async def test_published_item_is_consumed_and_acked(
    make_queue: Callable[..., RedisStreamQueue], redis_client: aioredis.Redis
) -> None:
    queue = make_queue()
    seen: list[str] = []

    async def consumer(item: str) -> None:
        seen.append(item)

    await queue.publish("pipeline", "message:1")
    worker = Running(queue, "pipeline", consumer)
    await until(lambda: seen == ["message:1"])
    await until(lambda: _depth_is(queue, "pipeline", 0))
    await worker.finish()
    pending = await redis_client.xpending(queue.stream_key("pipeline"), queue.group)
    assert pending["pending"] == 0


async def _depth_is(queue: RedisStreamQueue, topic: str, expected: int) -> bool:
    return await queue.depth(topic) == expected


async def test_failing_item_is_retried_until_it_succeeds(
    make_queue: Callable[..., RedisStreamQueue], dead: list[DeadLetter]
) -> None:
    queue = make_queue()
    calls: list[str] = []

    async def flaky(item: str) -> None:
        calls.append(item)
        if len(calls) < 3:
            raise RuntimeError("database busy")

    await queue.publish("pipeline", "message:7")
    worker = Running(queue, "pipeline", flaky)
    await until(lambda: len(calls) == 3)
    await until(lambda: _depth_is(queue, "pipeline", 0))
    await worker.finish()
    assert calls == ["message:7"] * 3
    assert dead == []


async def test_item_is_dead_lettered_after_max_attempts(
    make_queue: Callable[..., RedisStreamQueue], dead: list[DeadLetter]
) -> None:
    queue = make_queue(max_attempts=3)
    calls = 0

    async def broken(item: str) -> None:
        nonlocal calls
        calls += 1
        raise ValueError("cannot parse")

    await queue.publish("pipeline", "message:9")
    worker = Running(queue, "pipeline", broken)
    await until(lambda: len(dead) == 1)
    await until(lambda: _depth_is(queue, "pipeline", 0))
    await worker.finish()
    topic, item, error, attempts = dead[0]
    assert (topic, item, attempts, calls) == ("pipeline", "message:9", 3, 3)
    assert "cannot parse" in error


async def test_crashed_consumers_item_is_reclaimed_and_processed_once(
    make_queue: Callable[..., RedisStreamQueue],
) -> None:
    started = asyncio.Event()
    done: Counter[str] = Counter()

    async def stuck(item: str) -> None:
        started.set()
        await asyncio.Event().wait()  # hangs until its process dies

    async def healthy(item: str) -> None:
        done[item] += 1

    first = make_queue(consumer_name="worker-a", claim_idle=30)
    await first.publish("pipeline", "message:1")
    doomed = Running(first, "pipeline", stuck)
    await asyncio.wait_for(started.wait(), 10)
    await doomed.crash()

    second = make_queue(consumer_name="worker-b", claim_idle=0.3)
    for n in range(2, 6):
        await second.publish("pipeline", f"message:{n}")
    survivor = Running(second, "pipeline", healthy)
    await until(lambda: sum(done.values()) == 5, timeout=5)
    await until(lambda: _depth_is(second, "pipeline", 0))
    await survivor.finish()
    assert done == Counter({f"message:{n}": 1 for n in range(1, 6)})


async def test_slow_item_is_not_taken_over_by_another_consumer(
    make_queue: Callable[..., RedisStreamQueue],
) -> None:
    runs: Counter[str] = Counter()
    release = asyncio.Event()

    async def slow(item: str) -> None:
        runs[item] += 1
        await release.wait()

    a = Running(make_queue(consumer_name="a", claim_idle=0.2), "pipeline", slow)
    queue_b = make_queue(consumer_name="b", claim_idle=0.2)
    await queue_b.publish("pipeline", "message:1")
    await until(lambda: runs["message:1"] == 1)
    b = Running(queue_b, "pipeline", slow)
    # b reclaims every 0.1 s; the item stays with a for five claim_idle periods
    for _ in range(10):
        await asyncio.sleep(0.1)  # let reclaim rounds happen; nothing to await instead
    release.set()
    await until(lambda: _depth_is(queue_b, "pipeline", 0))
    await a.finish()
    await b.finish()
    assert runs == Counter({"message:1": 1})


async def test_item_whose_consumers_keep_dying_is_dead_lettered_unrun(
    make_queue: Callable[..., RedisStreamQueue],
    redis_client: aioredis.Redis,
    dead: list[DeadLetter],
) -> None:
    queue = make_queue(max_attempts=2, claim_idle=0.05)
    await queue.ensure_group("pipeline")
    await queue.publish("pipeline", "message:bomb")
    stream = queue.stream_key("pipeline")
    # two deliveries to consumers that died without acking
    await redis_client.xreadgroup(queue.group, "ghost-1", {stream: ">"}, count=1)
    await asyncio.sleep(0.06)  # idle past claim_idle, as a dead consumer's entry would be
    await redis_client.xautoclaim(stream, queue.group, "ghost-2", min_idle_time=50)
    ran: list[str] = []

    async def consumer(item: str) -> None:
        ran.append(item)

    worker = Running(queue, "pipeline", consumer)
    await until(lambda: len(dead) == 1)
    await worker.finish()
    assert ran == []
    assert dead[0][1] == "message:bomb"
    assert "crashed" in dead[0][2]


async def test_two_consumers_process_each_item_once(
    make_queue: Callable[..., RedisStreamQueue],
) -> None:
    done: Counter[str] = Counter()
    by: Counter[str] = Counter()

    def consumer_for(name: str) -> Any:
        async def consume(item: str) -> None:
            await asyncio.sleep(0.001)
            done[item] += 1
            by[name] += 1

        return consume

    queues = [make_queue(consumer_name=name) for name in ("a", "b")]
    workers = [Running(q, "pipeline", consumer_for(q.consumer_name)) for q in queues]
    for n in range(200):
        await queues[n % 2].publish("pipeline", f"message:{n}")
    await until(lambda: sum(done.values()) >= 200)
    await until(lambda: _depth_is(queues[0], "pipeline", 0))
    for w in workers:
        await w.finish()
    assert set(done.values()) == {1}
    assert len(done) == 200
    assert by["a"] > 0 and by["b"] > 0


async def test_stop_lets_in_flight_items_finish(
    make_queue: Callable[..., RedisStreamQueue],
) -> None:
    queue = make_queue()
    entered = asyncio.Event()
    release = asyncio.Event()
    finished: list[str] = []

    async def consumer(item: str) -> None:
        entered.set()
        await release.wait()
        finished.append(item)

    await queue.publish("pipeline", "message:1")
    worker = Running(queue, "pipeline", consumer)
    await asyncio.wait_for(entered.wait(), 10)
    worker.stop.set()
    release.set()
    await asyncio.wait_for(worker.task, 10)
    assert finished == ["message:1"]
    assert await queue.depth("pipeline") == 0


async def test_request_id_travels_with_the_item(
    make_queue: Callable[..., RedisStreamQueue],
) -> None:
    queue = make_queue()
    seen: list[dict[str, str]] = []

    async def consumer(item: str) -> None:
        seen.append(log_context.snapshot())

    with log_context.bind(request_id="req-42"):
        await queue.publish("pipeline", "message:1")
    worker = Running(queue, "pipeline", consumer)
    await until(lambda: len(seen) == 1)
    await worker.finish()
    assert seen == [{"request_id": "req-42"}]


async def test_depth_counts_waiting_and_retrying_items(
    make_queue: Callable[..., RedisStreamQueue],
) -> None:
    queue = make_queue(base_delay=60)
    failed = asyncio.Event()

    async def fails(item: str) -> None:
        failed.set()
        raise RuntimeError("later")

    await queue.publish("pipeline", "message:1")
    await queue.publish("other", "message:2")
    worker = Running(queue, "pipeline", fails)
    await asyncio.wait_for(failed.wait(), 10)
    await until(lambda: _retrying(queue, "pipeline"))
    await worker.finish()
    assert await queue.depth("pipeline") == 1  # waiting a minute for its retry
    assert await queue.depth("other") == 1


async def _retrying(queue: RedisStreamQueue, topic: str) -> bool:
    return int(await queue._redis.zcard(queue.retry_key(topic))) == 1


async def test_stream_length_is_bounded(
    make_queue: Callable[..., RedisStreamQueue], redis_client: aioredis.Redis
) -> None:
    queue = make_queue(maxlen=100)
    for n in range(1000):
        await queue.publish("pipeline", f"message:{n}")
    # MAXLEN ~ trims whole radix-tree nodes (100 entries by default), so allow one node
    assert await redis_client.xlen(queue.stream_key("pipeline")) <= 200


async def test_lag_is_the_age_of_the_oldest_item(
    make_queue: Callable[..., RedisStreamQueue],
) -> None:
    queue = make_queue()
    assert await queue.lag("pipeline") == 0.0
    await queue.publish("pipeline", "message:1")
    assert 0.0 <= await queue.lag("pipeline") < 5.0


async def test_publish_fails_cleanly_while_redis_is_down_and_works_after(
    redis_server: RedisServer, make_queue: Callable[..., RedisStreamQueue]
) -> None:
    queue = make_queue()
    await queue.publish("pipeline", "message:before")
    redis_server.stop()
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(QueueUnavailable):
            await queue.publish("pipeline", "message:during")
        assert loop.time() - started < 5  # a callback must still answer within 5 s
    finally:
        redis_server.start()
    await queue.publish("pipeline", "message:after")
    stream = await queue._redis.xrange(queue.stream_key("pipeline"))
    assert [fields["item"] for _id, fields in stream] == ["message:before", "message:after"]


async def test_consumer_survives_a_redis_restart(
    redis_server: RedisServer, make_queue: Callable[..., RedisStreamQueue]
) -> None:
    queue = make_queue()
    done: Counter[str] = Counter()

    async def consumer(item: str) -> None:
        done[item] += 1

    worker = Running(queue, "pipeline", consumer)
    await queue.publish("pipeline", "message:1")
    await until(lambda: done["message:1"] == 1)
    await until(lambda: _depth_is(queue, "pipeline", 0))
    redis_server.stop()
    try:
        await asyncio.sleep(0.3)  # the consumer's reads fail meanwhile; it must keep going
    finally:
        redis_server.start()
    await until(lambda: _publishes(queue, "message:2"))
    await until(lambda: done["message:2"] == 1, timeout=20)
    await worker.finish()
    assert done == Counter({"message:1": 1, "message:2": 1})


async def _publishes(queue: RedisStreamQueue, item: str) -> bool:
    try:
        await queue.publish("pipeline", item)
    except QueueUnavailable:
        return False
    return True


def test_queue_options_read_the_redis_section() -> None:
    options = queue_options({"claim_idle": 2, "max_attempts": 7, "url_for_other_use": "x"})
    assert options == {"claim_idle": 2.0, "max_attempts": 7}


def test_queue_options_report_every_bad_value() -> None:
    with pytest.raises(ValueError) as caught:
        queue_options({"claim_idle": "soon", "concurrency": 0})
    assert "claim_idle" in str(caught.value) and "concurrency" in str(caught.value)
