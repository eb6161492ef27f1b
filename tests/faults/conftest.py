"""Fixtures for the fault tests: a fresh PostgreSQL database, an empty Redis, a cluster."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from tests.faults.cluster import Cluster, start_cluster, stop_cluster
from tests.servers.postgres import PostgresServer
from tests.servers.redis import RedisServer


@pytest.fixture
async def pg_database(pg_server: PostgresServer, pg_template: str) -> str:
    name = f"f_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(
        host="127.0.0.1", port=pg_server.port, user=pg_server.user, database="postgres"
    )
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE {pg_template}')
    finally:
        await conn.close()
    return pg_server.url(name)


@pytest.fixture
async def cluster(
    tmp_path: Path, pg_database: str, redis_server: RedisServer
) -> AsyncIterator[Cluster]:
    import redis.asyncio as aioredis

    flush = aioredis.from_url(redis_server.url)
    await flush.flushdb()
    await flush.aclose()
    running = await start_cluster(tmp_path, pg_database, redis_server.url)
    try:
        yield running
    finally:
        print(running.logs())  # noqa: T201  (shown by pytest only when the test failed)
        await stop_cluster(running)
