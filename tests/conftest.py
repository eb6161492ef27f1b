"""Suite-wide fixtures: real SQLite and PostgreSQL stores, real redis-server, no network.

Servers are started once per session; a test that needs one that cannot run here is
skipped with the reason (CI installs them all, so nothing is skipped there).
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.migrate import upgrade
from conversations.db import Database, create_engine
from tests.servers import postgres, redis

# ---------------------------------------------------------------- no network


def _loopback(address: Any) -> bool:
    if isinstance(address, (str, bytes)):
        return True  # AF_UNIX path
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _guarded_connect(self: socket.socket, address: Any) -> Any:
    if not _loopback(address):
        raise ConnectionRefusedError(f"tests may only connect to loopback, not {address!r}")
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> Any:
    if not _loopback(address):
        raise ConnectionRefusedError(f"tests may only connect to loopback, not {address!r}")
    return _real_connect_ex(self, address)


socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]

# ---------------------------------------------------------------- temp dirs


def pytest_configure(config: pytest.Config) -> None:
    # a private base temp dir: pytest's shared numbered dirs are pruned by concurrent
    # sessions, which would delete a running PostgreSQL cluster under our feet
    if not config.option.basetemp:
        base = tempfile.mkdtemp(prefix="crmbot-tests-")
        config.option.basetemp = os.path.join(base, "t")
        config.stash[_OWN_BASETEMP] = base


def pytest_unconfigure(config: pytest.Config) -> None:
    base = config.stash.get(_OWN_BASETEMP, None)
    if base:
        shutil.rmtree(base, ignore_errors=True)


_OWN_BASETEMP = pytest.StashKey[str]()


# ---------------------------------------------------------------- servers


@pytest.fixture(scope="session")
def servers_root() -> Iterator[Path]:
    # outside pytest's 0700 temp tree: the postgres/dovecot users must reach their dirs
    root = Path(tempfile.mkdtemp(prefix="crmbot-servers-"))
    os.chmod(root, 0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server(servers_root: Path) -> Iterator[postgres.PostgresServer]:
    reason = postgres.available()
    if reason:
        pytest.skip(reason)
    server = postgres.start(servers_root / "pg")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server(servers_root: Path) -> Iterator[redis.RedisServer]:
    reason = redis.available()
    if reason:
        pytest.skip(reason)
    server = redis.start(servers_root / "redis")
    yield server
    server.stop()


# ---------------------------------------------------------------- stores


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_template(pg_server: postgres.PostgresServer) -> str:
    import asyncio

    import asyncpg

    async def create() -> None:
        conn = await asyncpg.connect(
            host="127.0.0.1", port=pg_server.port, user=pg_server.user, database="postgres"
        )
        await conn.execute("CREATE DATABASE crmbot_template")
        await conn.close()

    asyncio.run(create())
    upgrade(pg_server.url("crmbot_template"))
    return "crmbot_template"


def _new_sqlite_url(template: Path, tmp_path: Path) -> str:
    path = tmp_path / "crmbot.db"
    shutil.copyfile(template, path)
    return f"sqlite+aiosqlite:///{path}"


async def _new_pg_url(server: postgres.PostgresServer, template: str) -> str:
    import asyncpg

    name = f"t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(
        host="127.0.0.1", port=server.port, user=server.user, database="postgres"
    )
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE {template}')
    finally:
        await conn.close()
    return server.url(name)


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> Iterator[str]:
    """A migrated, empty store URL; tests using it run on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield _new_sqlite_url(sqlite_template, tmp_path)
        return
    import asyncio

    server = request.getfixturevalue("pg_server")
    template = request.getfixturevalue("pg_template")
    yield asyncio.run(_new_pg_url(server, template))


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    """A migrated SQLite store URL, for tests whose subject is not the database."""
    return _new_sqlite_url(sqlite_template, tmp_path)


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(create_engine(db_url))
    yield database
    await database.dispose()


@pytest.fixture
async def sqlite_db(sqlite_url: str) -> AsyncIterator[Database]:
    database = Database(create_engine(sqlite_url))
    yield database
    await database.dispose()


# ---------------------------------------------------------------- a whole system


@pytest.fixture
async def system(db_url: str, tmp_path: Path) -> AsyncIterator[Any]:
    """crmbot web + worker on a fresh store (SQLite and PostgreSQL) with a WeCom simulator."""
    from tests.system import start_system, stop_system

    running = await start_system(db_url, tmp_path)
    yield running
    await stop_system(running)


@pytest.fixture
async def sqlite_system(sqlite_url: str, tmp_path: Path) -> AsyncIterator[Any]:
    from tests.system import start_system, stop_system

    running = await start_system(sqlite_url, tmp_path)
    yield running
    await stop_system(running)
