"""A stand-in `crmbot scheduler` process for the fault tests: campaigns for leadership
(bot.leader) and, while leader, fires one schedule every TICK seconds with a fenced
write (refused when a newer leader exists).

    python -m tests.faults.scheduler_process REDIS_URL
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
import sys
import time

import redis.asyncio as aioredis

from bot.leader import Lease, serve_as_leader

TICK = 0.2
TTL = 1.0
FIRES = "test:fires"
FENCE = "crmbot:leader:scheduler:fence"

# Append the fire only while this token is the newest one (a fenced write).
FENCED_FIRE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
return redis.call('RPUSH', KEYS[2], ARGV[2])
"""


async def main(url: str) -> None:
    redis = aioredis.from_url(url, decode_responses=True)
    fire = redis.register_script(FENCED_FIRE)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)

    async def fire_schedules(lease: Lease) -> None:
        print(f"leader {os.getpid()} token {lease.token}", flush=True)  # noqa: T201
        last = math.floor(time.time() / TICK)
        while True:
            slot = math.floor(time.time() / TICK)
            if slot > last:
                last = slot
                await fire(keys=[FENCE, FIRES], args=[lease.token, f"{slot}:{os.getpid()}"])
            await asyncio.sleep(TICK / 4)

    print("ready", flush=True)  # noqa: T201
    await serve_as_leader(redis, "scheduler", fire_schedules, stop, ttl=TTL)
    await redis.aclose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
