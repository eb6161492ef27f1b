"""Segment benchmark (issue 7): N customers with K tags each and a province, generated
set-based; then (1) the count of a segment of three tag conditions and one dimension,
(2) bulk-tagging 100,000 customers. On SQLite and on PostgreSQL (started here from the
test suite's server helper unless --pg-url is given). Prints JSON.

    python -m bench.segments                       # 1,000,000 customers, both databases
    python -m bench.segments --customers 100000    # a quick run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import text

from bot.migrate import upgrade
from conversations.db import Database, create_engine
from tagging.segments import parse
from tagging.segments.service import count_customers
from tagging.tags import TagRef, Why, bulk_tag, create_group, create_tag, ensure_tag

PROVINCES = [
    "广东",
    "北京",
    "上海",
    "浙江",
    "江苏",
    "山东",
    "河南",
    "四川",
    "湖北",
    "湖南",
    "福建",
    "安徽",
    "河北",
    "辽宁",
    "陕西",
    "江西",
    "重庆",
    "天津",
    "云南",
    "广西",
    "山西",
    "黑龙江",
    "吉林",
    "贵州",
    "甘肃",
    "内蒙古",
    "新疆",
    "海南",
    "宁夏",
    "青海",
    "西藏",
]
GROUPS = ("意向", "行业", "来源", "产品", "活动")
TAGS_PER_GROUP = 10
TAG_COUNT = len(GROUPS) * TAGS_PER_GROUP
# per-customer tag offsets: distinct mod 50, so each customer gets K different tags
OFFSETS = (0, 7, 15, 23, 36, 41, 3, 29)
SEGMENT = 'tag:"意向/t1" AND tag:"意向/t8" AND tag:"行业/t16" AND region:广东'
TS = "2026-01-01 00:00:00"


def _tag_name(index: int) -> str:
    """Tag i (1-based id order) is group GROUPS[(i-1)//10], named t<i>."""
    return f"{GROUPS[(index - 1) // TAGS_PER_GROUP]}/t{index}"


async def generate(db: Database, customers: int, per_customer: int) -> dict[str, float]:
    timings: dict[str, float] = {}
    pg = db.dialect == "postgresql"
    async with db.transaction() as s:
        for g, name in enumerate(GROUPS):
            group = await create_group(s, name, sort=g)
            for t in range(TAGS_PER_GROUP):
                await create_tag(s, group, f"t{g * TAGS_PER_GROUP + t + 1}")
    start = time.perf_counter()
    async with db.engine.begin() as conn:
        if pg:
            await conn.execute(
                text(
                    "INSERT INTO customers (id, display_name, profile, created_at, updated_at) "
                    "SELECT n, 'c' || n, '{}'::json, now(), now() FROM generate_series(1, :n) n"
                ),
                {"n": customers},
            )
            await conn.execute(
                text("SELECT setval(pg_get_serial_sequence('customers', 'id'), :n)"),
                {"n": customers},
            )
        else:
            await conn.execute(
                text(
                    "WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq "
                    "WHERE n < :n) INSERT INTO customers (id, display_name, profile, "
                    "created_at, updated_at) SELECT n, 'c' || n, '{}', :ts, :ts FROM seq"
                ),
                {"n": customers, "ts": TS},
            )
        values = ", ".join(f"({i}, '{name}')" for i, name in enumerate(PROVINCES))
        now = "now()" if pg else f"'{TS}'"
        await conn.execute(
            text(
                f"WITH prov(i, name) AS (VALUES {values}) "  # noqa: S608  # constants only
                "INSERT INTO customer_profiles (customer_id, province, city, updated_at) "
                # seven made-up cities per province: realistic selectivity for the planner
                f"SELECT c.id, prov.name, prov.name || 'c' || (c.id % 7), {now} FROM customers c "
                f"JOIN prov ON prov.i = c.id % {len(PROVINCES)}"
            )
        )
    timings["customers_s"] = time.perf_counter() - start
    start = time.perf_counter()
    offsets = ", ".join(f"({j}, {o})" for j, o in enumerate(OFFSETS[:per_customer]))
    async with db.engine.begin() as conn:
        # the tag-first index is built after the load: one sort instead of 5M random inserts
        await conn.execute(text("DROP INDEX ix_customer_tags_tag_customer"))
        await conn.execute(
            text(
                f"WITH offs(j, o) AS (VALUES {offsets}) "  # noqa: S608  # constants only
                "INSERT INTO customer_tags (customer_id, tag_id, source, reason, created_at) "
                f"SELECT c.id, 1 + ((c.id * 48271) % 2147483647 % {TAG_COUNT} + offs.o) "
                f"% {TAG_COUNT}, 'bulk', '', {now} FROM customers c CROSS JOIN offs"
            )
        )
        await conn.execute(
            text(
                "CREATE INDEX ix_customer_tags_tag_customer ON customer_tags (tag_id, customer_id)"
            )
        )
    timings["assignments_s"] = time.perf_counter() - start
    start = time.perf_counter()
    # the steady state of a live store: statistics gathered, and on PostgreSQL the
    # visibility map set (what autovacuum does), so index-only scans can skip the heap
    async with db.engine.connect() as conn:
        auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await auto.execute(text("VACUUM ANALYZE" if pg else "ANALYZE"))
    timings["analyze_s"] = time.perf_counter() - start
    return timings


async def measure(db: Database, customers: int, bulk: int, runs: int) -> dict[str, Any]:
    node = parse(SEGMENT)
    durations = []
    count = 0
    for _ in range(runs):
        async with db.reading() as s:
            start = time.perf_counter()
            count = await count_customers(s, node)
            durations.append((time.perf_counter() - start) * 1000)
    step = max(1, customers // bulk)
    ids = list(range(1, customers + 1, step))[:bulk]
    start = time.perf_counter()
    async with db.transaction() as s:
        tag = await ensure_tag(s, TagRef.parse("活动/bench-bulk"))
        added = await bulk_tag(s, tag.id, ids, Why("bulk", reason="benchmark"))
    bulk_s = time.perf_counter() - start
    async with db.engine.connect() as conn:
        assignments = (await conn.execute(text("SELECT count(*) FROM customer_tags"))).scalar()
    return {
        "segment": SEGMENT,
        "segment_count": count,
        "count_ms_first": round(durations[0], 1),
        "count_ms_median": round(statistics.median(durations), 1),
        "count_ms_max_warm": round(max(durations[1:] or durations), 1),
        "bulk_tag_customers": len(ids),
        "bulk_tag_added": added,
        "bulk_tag_s": round(bulk_s, 2),
        "assignments": assignments,
    }


async def run_backend(
    url: str, customers: int, per_customer: int, bulk: int, runs: int
) -> dict[str, Any]:
    await asyncio.to_thread(upgrade, url)
    db = Database(create_engine(url, sqlite_synchronous="NORMAL"))
    try:
        timings = await generate(db, customers, per_customer)
        result = await measure(db, customers, bulk, runs)
    finally:
        await db.dispose()
    return {
        "customers": customers,
        **{k: round(v, 1) for k, v in timings.items()},
        **result,
        "ok": result["count_ms_median"] <= 300 and result["bulk_tag_s"] <= 10,
    }


async def create_pg_database(server: Any) -> str:
    import asyncpg

    conn = await asyncpg.connect(
        host="127.0.0.1", port=server.port, user=server.user, database="postgres"
    )
    try:
        await conn.execute("CREATE DATABASE crmbot_bench")
    finally:
        await conn.close()
    return str(server.url("crmbot_bench"))


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--tags-per-customer", type=int, default=5, choices=range(1, 9))
    parser.add_argument("--bulk", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--pg-url", help="an empty PostgreSQL database (else one is started)")
    args = parser.parse_args()
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="crmbot-segbench-") as tmp:
        for backend in args.backends.split(","):
            if backend == "sqlite":
                url = f"sqlite+aiosqlite:///{Path(tmp) / 'segments.db'}"
                report["sqlite"] = await run_backend(
                    url, args.customers, args.tags_per_customer, args.bulk, args.runs
                )
            elif backend == "postgres":
                server = None
                url = args.pg_url
                if url is None:
                    from tests.servers import postgres

                    reason = postgres.available()
                    if reason:
                        report["postgres"] = {"skipped": reason}
                        continue
                    # the server runs as the postgres user: it must reach its directory
                    os.chmod(tmp, 0o755)  # noqa: S103  # read-only walk-through for postgres
                    root = Path(tmp) / "pg"
                    server = postgres.start(root)
                    url = await create_pg_database(server)
                try:
                    report["postgres"] = await run_backend(
                        url, args.customers, args.tags_per_customer, args.bulk, args.runs
                    )
                finally:
                    if server is not None:
                        server.stop()
            else:
                parser.error(f"unknown backend {backend!r}")
    print(json.dumps(report, ensure_ascii=False, indent=2))
    return 0 if all(r.get("ok", True) for r in report.values()) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
