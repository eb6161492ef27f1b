"""Ingest benchmark (issue 2): N encrypted WeCom callbacks at a concurrency, against a
running crmbot (started here on a scratch store unless --url is given).

Prints JSON: messages/s stored-and-acknowledged (issue 2's figure: callbacks answered
200 per second of posting), p50/p99 acknowledgement latency, duplicates stored and
messages lost (checked in the store afterwards), the server's CPU per callback (robust
on a shared machine, where wall-clock figures are noisy), and how long the pipeline
took after the last acknowledgement to process everything (handlers run after the
acknowledgement and step aside while callbacks wait for their commit, so under the
burst they fall behind and catch up afterwards). A share of the callbacks is re-posted,
as WeCom retries, to prove retries never double.

    python -m bench.ingest --n 5000 --concurrency 50
    python -m bench.ingest --quick        # 1,500 messages, for a before/after check
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from pathlib import Path

import aiohttp
from sqlalchemy import func, select

from channels.wecom.simulator import SignedCallback, sign_callback, text_message_xml
from conversations.db import Database, create_engine
from conversations.models import Message

from ._harness import percentile, start_instance


async def run(
    n: int, concurrency: int, retry_share: float, database_url: str | None
) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="crmbot-bench-") as tmp:
        inst = await start_instance(Path(tmp), database_url)
        try:
            base_id = random.randrange(10**15)
            calls: list[tuple[int, SignedCallback]] = []
            for i in range(n):
                plain = text_message_xml(
                    inst.app, f"user{i % 500}", f"第{i}条消息：请问价格多少？", msg_id=base_id + i
                )
                calls.append((base_id + i, sign_callback(inst.app, plain)))
            retries = random.sample(calls, int(n * retry_share))
            work = calls + retries
            latencies: list[float] = []
            failures = 0
            queue: asyncio.Queue[SignedCallback] = asyncio.Queue()
            for _, cb in work:
                queue.put_nowait(cb)
            connector = aiohttp.TCPConnector(limit=concurrency)
            async with aiohttp.ClientSession(connector=connector) as http:

                async def worker() -> None:
                    nonlocal failures
                    while not queue.empty():
                        cb = queue.get_nowait()
                        started = time.perf_counter()
                        async with http.post(cb.url(inst.callback_url), data=cb.body) as resp:
                            await resp.read()
                            if resp.status != 200:
                                failures += 1
                        latencies.append((time.perf_counter() - started) * 1000)

                cpu0 = inst.cpu_seconds()
                t0 = time.perf_counter()
                await asyncio.gather(*(worker() for _ in range(concurrency)))
                elapsed = time.perf_counter() - t0
                cpu_ingest = inst.cpu_seconds() - cpu0
            db = Database(create_engine(inst.database_url))
            drained = await _drain_seconds(db, deadline_s=120.0)
            async with db.reading() as s:
                stored = int(
                    await s.scalar(
                        select(func.count()).select_from(Message).where(Message.direction == "in")
                    )
                    or 0
                )
                distinct = int(
                    await s.scalar(
                        select(func.count(func.distinct(Message.provider_key))).where(
                            Message.direction == "in"
                        )
                    )
                    or 0
                )
            await db.dispose()
        finally:
            inst.stop()
    return {
        "benchmark": "ingest",
        "store": "postgresql"
        if database_url and database_url.startswith("postgresql")
        else "sqlite",
        "callbacks_posted": len(work),
        "unique_messages": n,
        "concurrency": concurrency,
        "elapsed_s": round(elapsed, 3),
        "messages_per_s": round(len(work) / elapsed, 1),
        "unique_stored_per_s": round(n / elapsed, 1),
        "ack_latency_ms_p50": round(percentile(latencies, 50), 2),
        "ack_latency_ms_p99": round(percentile(latencies, 99), 2),
        "non_200": failures,
        "server_cpu_ms_per_callback": round(cpu_ingest * 1000 / len(work), 3),
        "pipeline_drained_after_s": None if drained is None else round(drained, 2),
        "duplicates": stored - distinct,
        "losses": n - distinct,
        "targets": {
            "messages_per_s": ">= 1000",
            "ack_latency_ms_p99": "<= 100",
            "duplicates": 0,
            "losses": 0,
        },
    }


async def _drain_seconds(db: Database, deadline_s: float) -> float | None:
    """Seconds until every stored message was processed (None: not within the deadline)."""
    started = time.perf_counter()
    while time.perf_counter() - started < deadline_s:
        async with db.reading() as s:
            left = await s.scalar(
                select(func.count())
                .select_from(Message)
                .where(Message.direction == "in", Message.processed_at.is_(None))
            )
        if not left:
            return time.perf_counter() - started
        await asyncio.sleep(0.1)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--retry-share", type=float, default=0.1)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--quick", action="store_true", help="1,500 messages (overrides --n)")
    args = parser.parse_args()
    if args.quick:
        args.n = 1500
    print(
        json.dumps(
            asyncio.run(run(args.n, args.concurrency, args.retry_share, args.database_url)),
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
