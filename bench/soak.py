"""Soak benchmark (issue 10): hold crmbot at half its measured capacity for a long time
and report resident memory and acknowledgement latency at the start and at the end.
Flat is good: growth means a leak or a queue that does not keep up.

Runs the embedded default (`crmbot run`, SQLite) on a scratch store. Capacity is
measured first with a short burst unless --rate is given. The issue's soak is 30
minutes; `make bench` runs a short one, CI never runs it.

    python -m bench.soak --minutes 30
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import tempfile
import time
from pathlib import Path

import aiohttp

from channels.wecom.simulator import sign_callback, text_message_xml

from ._harness import Instance, percentile, start_instance

WINDOW_S = 60.0  # latency and memory are compared over the first and the last window


def rss_kib(pid: int) -> int:
    """Resident set size of a process (Linux /proc), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Poster:
    def __init__(self, inst: Instance, http: aiohttp.ClientSession) -> None:
        self.inst = inst
        self.http = http
        self.next_id = secrets.randbelow(10**12) * 1000
        self.failures = 0

    async def post_one(self) -> float:
        """Post one fresh callback; returns the acknowledgement latency in ms."""
        self.next_id += 1
        cb = sign_callback(
            self.inst.app,
            text_message_xml(
                self.inst.app, f"user{self.next_id % 500}", "请问价格？", self.next_id
            ),
        )
        started = time.perf_counter()
        async with self.http.post(cb.url(self.inst.callback_url), data=cb.body) as resp:
            await resp.read()
            self.failures += resp.status != 200
        return (time.perf_counter() - started) * 1000


async def measure_capacity(poster: Poster, n: int = 1000, concurrency: int = 50) -> float:
    remaining = n

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await poster.post_one()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return n / (time.perf_counter() - t0)


async def soak(poster: Poster, rate: float, seconds: float) -> dict[str, object]:
    """Open-loop load: one request every 1/rate s, whatever the latency (no coordinated
    omission), with RSS and latencies sampled in the first and last windows."""
    window = min(WINDOW_S, seconds / 3)
    start_lat: list[float] = []
    end_lat: list[float] = []
    rss: list[tuple[float, int]] = []
    tasks: set[asyncio.Task[None]] = set()
    t0 = time.perf_counter()
    sent = 0

    async def one(at: float) -> None:
        latency = await poster.post_one()
        if at < window:
            start_lat.append(latency)
        elif at >= seconds - window:
            end_lat.append(latency)

    next_rss = 0.0
    while (elapsed := time.perf_counter() - t0) < seconds:
        due = sent / rate
        if elapsed < due:
            await asyncio.sleep(due - elapsed)
            continue
        task = asyncio.create_task(one(elapsed))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        sent += 1
        if elapsed >= next_rss:
            rss.append((elapsed, rss_kib(poster.inst.proc.pid)))
            next_rss = elapsed + window / 4
    await asyncio.gather(*tasks)
    rss.append((time.perf_counter() - t0, rss_kib(poster.inst.proc.pid)))
    first = [kib for at, kib in rss if at < window] or [rss[0][1]]
    last = [kib for at, kib in rss if at >= seconds - window] or [rss[-1][1]]
    return {
        "requests": sent,
        "non_200": poster.failures,
        "rss_mib_start": round(max(first) / 1024, 1),
        "rss_mib_end": round(max(last) / 1024, 1),
        "ack_latency_ms_p50_start": round(percentile(start_lat, 50), 2),
        "ack_latency_ms_p99_start": round(percentile(start_lat, 99), 2),
        "ack_latency_ms_p50_end": round(percentile(end_lat, 50), 2),
        "ack_latency_ms_p99_end": round(percentile(end_lat, 99), 2),
    }


async def run(minutes: float, rate: float | None) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="crmbot-soak-") as tmp:
        inst = await start_instance(Path(tmp))
        try:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200)) as http:
                poster = Poster(inst, http)
                capacity = None
                if rate is None:
                    capacity = await measure_capacity(poster)
                    rate = max(1.0, capacity / 2)
                    poster.failures = 0
                figures = await soak(poster, rate, minutes * 60)
        finally:
            inst.stop()
    return {
        "benchmark": "soak",
        "store": "sqlite",
        "minutes": minutes,
        "measured_capacity_per_s": None if capacity is None else round(capacity, 1),
        "rate_per_s": round(rate, 1),
        **figures,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument(
        "--rate", type=float, help="requests/s (default: half the measured capacity)"
    )
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.minutes, args.rate)), ensure_ascii=False))


if __name__ == "__main__":
    main()
