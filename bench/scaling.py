"""Scaling benchmark (issue 10): ingest-to-processed throughput with 1, 2 and 4 worker
processes on PostgreSQL + Redis, against the embedded default (`crmbot run`, SQLite,
in-process queue), on the same machine in the same run.

For each setup N encrypted WeCom callbacks are posted at a concurrency; the clock stops
when every message is stored AND processed by the pipeline. Prints JSON: messages/s,
p50/p99 acknowledgement latency, and the scaling ratio against one worker.

PostgreSQL and redis-server are started here (throwaway, loopback) unless
--database-admin-url / --redis-url point at running ones.

    python -m bench.scaling --n 2000 --workers 1 2 4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
from sqlalchemy import func, select

from channels.wecom.simulator import sign_callback, text_message_xml
from conversations.db import Database, create_engine
from conversations.models import Message

from ._harness import Store, free_port, percentile, prepare_store


def spawn(
    role: str, store: Store, data_dir: Path, port: int | None, redis_url: str | None
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CRMBOT_DATABASE_URL": store.url,
        "CRMBOT_DATA_DIR": str(data_dir),
        "CRMBOT_SANDBOX": "false",
        "CRMBOT_SECRET_KEY": store.secret_key,
        "CRMBOT_LOG_LEVEL": "WARNING",
    }
    if redis_url:
        env["CRMBOT_REDIS_URL"] = redis_url
    if port is not None:
        env["CRMBOT_PORT"] = str(port)
    return subprocess.Popen(
        [sys.executable, "-m", "bot.cli", role],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def wait_healthy(base: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"crmbot exited with {proc.returncode}")
            try:
                async with http.get(base + "/healthz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise TimeoutError("crmbot did not become healthy")


async def drive(store: Store, base: str, n: int, concurrency: int) -> dict[str, float]:
    """Post n callbacks; return throughput to fully processed and ack latencies."""
    first_id = secrets.randbelow(10**12) * 1000
    calls = [
        sign_callback(
            store.app,
            text_message_xml(
                store.app, f"user{i % 500}", f"第{i}条：请问价格？", msg_id=first_id + i
            ),
        )
        for i in range(n)
    ]
    url = f"{base}/callbacks/wecom.app/{store.token}"
    latencies: list[float] = []
    failures = 0
    pending = list(reversed(calls))
    db = Database(create_engine(store.url))
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as http:

            async def poster() -> None:
                nonlocal failures
                while pending:
                    cb = pending.pop()
                    started = time.perf_counter()
                    async with http.post(cb.url(url), data=cb.body) as resp:
                        await resp.read()
                        failures += resp.status != 200
                    latencies.append((time.perf_counter() - started) * 1000)

            t0 = time.perf_counter()
            await asyncio.gather(*(poster() for _ in range(concurrency)))
            acked = time.perf_counter() - t0
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                async with db.reading() as s:
                    processed = int(await s.scalar(select(func.count(Message.processed_at))) or 0)
                if processed >= n:
                    break
                await asyncio.sleep(0.1)
            done = time.perf_counter() - t0
    finally:
        await db.dispose()
    return {
        "processed": processed,
        "non_200": failures,
        "acked_per_s": round(n / acked, 1),
        "processed_per_s": round(n / done, 1),
        "ack_latency_ms_p50": round(percentile(latencies, 50), 2),
        "ack_latency_ms_p99": round(percentile(latencies, 99), 2),
    }


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()


async def run_embedded(tmp: Path, n: int, concurrency: int) -> dict[str, object]:
    store = await prepare_store(f"sqlite+aiosqlite:///{tmp / 'embedded.db'}")
    port = free_port()
    proc = spawn("run", store, tmp / "embedded", port, None)
    try:
        await wait_healthy(f"http://127.0.0.1:{port}", proc)
        figures = await drive(store, f"http://127.0.0.1:{port}", n, concurrency)
    finally:
        stop([proc])
    return {"setup": "embedded (SQLite, in-process queue, 1 process)", **figures}


async def run_scaled(
    tmp: Path, admin_url: str, redis_url: str, workers: int, n: int, concurrency: int
) -> dict[str, object]:
    import asyncpg
    import redis.asyncio as aioredis

    name = f"bench_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(admin_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    store = await prepare_store(admin_url.rsplit("/", 1)[0] + f"/{name}")
    client = aioredis.from_url(redis_url)
    await client.flushdb()
    await client.aclose()
    port = free_port()
    procs = [spawn("web", store, tmp / name, port, redis_url)]
    procs += [spawn("worker", store, tmp / name, None, redis_url) for _ in range(workers)]
    try:
        await wait_healthy(f"http://127.0.0.1:{port}", procs[0])
        figures = await drive(store, f"http://127.0.0.1:{port}", n, concurrency)
    finally:
        stop(procs)
    return {
        "setup": f"PostgreSQL + Redis, 1 web, {workers} worker(s)",
        "workers": workers,
        **figures,
    }


async def run(args: argparse.Namespace) -> dict[str, object]:
    servers: list[object] = []
    with tempfile.TemporaryDirectory(prefix="crmbot-scaling-") as raw_tmp:
        tmp = Path(raw_tmp)
        tmp.chmod(0o755)  # initdb runs as the postgres user and must reach its data dir
        admin_url, redis_url = args.database_admin_url, args.redis_url
        try:
            if admin_url is None or redis_url is None:
                from tests.servers import postgres, redis  # throwaway loopback servers

                if admin_url is None:
                    reason = postgres.available()
                    if reason:
                        return {"benchmark": "scaling", "skipped": reason}
                    pg = postgres.start(tmp / "pg")
                    servers.append(pg)
                    admin_url = pg.admin_url()
                if redis_url is None:
                    reason = redis.available()
                    if reason:
                        return {"benchmark": "scaling", "skipped": reason}
                    rs = redis.start(tmp / "redis")
                    servers.append(rs)
                    redis_url = rs.url
            results = [await run_embedded(tmp, args.n, args.concurrency)]
            for k in args.workers:
                results.append(
                    await run_scaled(tmp, admin_url, redis_url, k, args.n, args.concurrency)
                )
        finally:
            for server in servers:
                server.stop()  # type: ignore[attr-defined]
    scaled = [r for r in results if "workers" in r]
    base = next((r for r in scaled if r["workers"] == 1), None)
    ratios = {
        str(r["workers"]): round(float(r["processed_per_s"]) / float(base["processed_per_s"]), 2)  # type: ignore[arg-type]
        for r in scaled
        if base
    }
    return {
        "benchmark": "scaling",
        "n": args.n,
        "concurrency": args.concurrency,
        "cpu_count": os.cpu_count(),
        "results": results,
        "scaling_ratio_vs_1_worker": ratios,
        "note": "every process shares this machine's cores with PostgreSQL, Redis and the load generator",
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--database-admin-url", help="postgresql+asyncpg://user@host:port/postgres")
    parser.add_argument("--redis-url")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args)), ensure_ascii=False))


if __name__ == "__main__":
    main()
