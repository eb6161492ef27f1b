"""A scaled crmbot made of real processes (`crmbot web`, `crmbot worker`) on the suite's
PostgreSQL and redis-server, with the WeCom simulator in the test's own event loop.

The fault tests kill, stop and restart pieces of it and then check the store, Redis and
the simulator: every accepted callback stored once, processed once, answered once.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import func, select

from autoreply.models import KeywordRule
from autoreply.store import RULES, bump_versions
from bot.secrets import SecretBox
from channels.wecom.simulator import (
    SimApp,
    WeComSimulator,
    new_app,
    sign_callback,
    text_message_xml,
)
from conversations.db import Database, create_engine
from conversations.models import ChannelAccount, Message, OutboxItem
from tests.servers.ports import free_port

KEYWORD = "价格"
REPLY = "您好！价格表已发送，请查收。"

# Short timings so failures are detected and repaired within a test's budget.
CONFIG = """
[redis]
claim_idle = 1.0
block = 0.2
base_delay = 0.2
max_attempts = 8

[pipeline]
recovery_seconds = 2
"""


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 30.0) -> Any:
    """Poll `check` until it returns something truthy, or fail with its last value."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: Any = None
    while loop.time() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"not reached within {timeout}s (last: {last!r}, {check!r})")


@dataclass
class Proc:
    role: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    port: int | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def kill9(self) -> None:
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=10)

    def terminate(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""


@dataclass
class Cluster:
    root: Path
    database_url: str
    redis_url: str
    db: Database
    redis: aioredis.Redis
    sim: WeComSimulator
    sim_server: TestServer
    app: SimApp
    token: str
    secret_key: str
    procs: list[Proc] = field(default_factory=list)
    http: aiohttp.ClientSession | None = None
    _next_msg_id: int = field(default_factory=lambda: secrets.randbelow(10**12) * 1000)

    # ------------------------------------------------------------ processes

    def _env(self, port: int | None) -> dict[str, str]:
        env = {
            **os.environ,
            "CRMBOT_DATABASE_URL": self.database_url,
            "CRMBOT_REDIS_URL": self.redis_url,
            "CRMBOT_DATA_DIR": str(self.root / "data"),
            "CRMBOT_SANDBOX": "false",
            "CRMBOT_SECRET_KEY": self.secret_key,
            "CRMBOT_LOG_LEVEL": "INFO",
            "CRMBOT_CONFIG": str(self.root / "crmbot.toml"),
        }
        if port is not None:
            env["CRMBOT_PORT"] = str(port)
            env["CRMBOT_PUBLIC_URL"] = f"http://127.0.0.1:{port}"
        return env

    def _spawn(self, role: str, port: int | None = None) -> Proc:
        log_path = self.root / f"{role}-{len(self.procs)}.log"
        with log_path.open("wb") as log:
            popen = subprocess.Popen(
                [sys.executable, "-m", "bot.cli", role],
                env=self._env(port),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.root,
            )
        proc = Proc(role, popen, log_path, port)
        self.procs.append(proc)
        return proc

    async def start_web(self) -> Proc:
        proc = self._spawn("web", free_port())
        assert self.http is not None

        async def healthy() -> bool:
            if proc.popen.poll() is not None:
                raise AssertionError(f"web exited:\n{proc.log_tail()}")
            try:
                async with self.http.get(f"http://127.0.0.1:{proc.port}/healthz") as resp:  # type: ignore[union-attr]
                    return resp.status == 200
            except aiohttp.ClientError:
                return False

        await eventually(healthy, timeout=60)
        return proc

    async def start_worker(self) -> Proc:
        """Start a worker and wait until its loops run (it logs "worker started")."""
        proc = self._spawn("worker")

        async def started() -> bool:
            if proc.popen.poll() is not None:
                raise AssertionError(f"worker exited:\n{proc.log_tail()}")
            return "worker started" in proc.log_tail(100_000)

        await eventually(started, timeout=60)
        return proc

    async def consumer_of(self, proc: Proc) -> dict[str, Any] | None:
        """The worker's entry in XINFO CONSUMERS (Redis 7.0 adds it at its first item)."""
        try:
            consumers = await self.redis.xinfo_consumers(STREAM, GROUP)
        except aioredis.ResponseError:
            return None  # no stream / group yet
        for consumer in consumers:
            if f"-{proc.pid}-" in str(consumer["name"]):
                return dict(consumer)
        return None

    # ------------------------------------------------------------ provider side

    def add_customers(self, n: int) -> list[str]:
        """App messages come from staff members; each gets at most 30/min, so spread out."""
        users = [f"staff{i:04d}" for i in range(n)]
        for user in users:
            self.sim.add_member(self.app.corp_id, user)
        return users

    async def post(self, web_proc: Proc, user: str, text: str, msg_id: int) -> int:
        """POST one signed callback as WeCom would; returns the HTTP status (0 = no answer)."""
        assert self.http is not None
        callback = sign_callback(self.app, text_message_xml(self.app, user, text, msg_id=msg_id))
        url = callback.url(f"http://127.0.0.1:{web_proc.port}/callbacks/wecom.app/{self.token}")
        try:
            async with self.http.post(
                url, data=callback.body, timeout=aiohttp.ClientTimeout(total=10)
            ) as resp:
                await resp.read()
                return resp.status
        except (aiohttp.ClientError, TimeoutError):
            return 0

    async def post_until_accepted(
        self, web_proc: Proc, user: str, text: str, msg_id: int, timeout: float = 60
    ) -> list[int]:
        """WeCom retries a callback until it gets 200; returns every status it saw."""
        statuses: list[int] = []

        async def attempt() -> bool:
            statuses.append(await self.post(web_proc, user, text, msg_id))
            if statuses[-1] != 200:
                await asyncio.sleep(0.2)  # the provider's retry interval
            return statuses[-1] == 200

        await eventually(attempt, timeout=timeout)
        return statuses

    def new_msg_ids(self, n: int) -> list[int]:
        first = self._next_msg_id
        self._next_msg_id += n
        return list(range(first, first + n))

    # ------------------------------------------------------------ observations

    async def inbound_counts(self) -> tuple[int, int, int]:
        """(stored, distinct provider ids, processed) for inbound messages."""
        async with self.db.reading() as s:
            row = (
                await s.execute(
                    select(
                        func.count(),
                        func.count(func.distinct(Message.provider_key)),
                        func.count(Message.processed_at),
                    ).where(Message.direction == "in")
                )
            ).one()
        return int(row[0]), int(row[1]), int(row[2])

    async def keyword_hits(self) -> int:
        async with self.db.reading() as s:
            return int(await s.scalar(select(func.sum(KeywordRule.hits))) or 0)

    async def outbox_statuses(self) -> Counter[str]:
        async with self.db.reading() as s:
            rows = await s.execute(
                select(OutboxItem.status, func.count()).group_by(OutboxItem.status)
            )
            return Counter({status: int(n) for status, n in rows})

    def replies_per_user(self) -> Counter[str]:
        return Counter(m.touser for m in self.sim.sent if m.content == REPLY)

    async def pending_total(self) -> int:
        info = await self.redis.xpending(STREAM, GROUP)
        return int(info["pending"])

    def logs(self) -> str:
        return "\n".join(f"==== {p.role} {p.pid}\n{p.log_tail()}" for p in self.procs)


STREAM = "crmbot:queue:inbound"
GROUP = "workers"


async def start_cluster(
    root: Path,
    database_url: str,
    redis_url: str,
    sim_middlewares: list[Any] | None = None,
) -> Cluster:
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "crmbot.toml").write_text(CONFIG, encoding="utf-8")
    sim = WeComSimulator()
    sim_app = sim.app()
    for middleware in sim_middlewares or []:
        sim_app.middlewares.append(middleware)
    sim_server = TestServer(sim_app, host="127.0.0.1")
    await sim_server.start_server()
    app = sim.add_app(new_app())
    secret_key = secrets.token_urlsafe(40)
    token = secrets.token_urlsafe(16)
    db = Database(create_engine(database_url))
    async with db.transaction() as s:
        s.add(
            ChannelAccount(
                kind="wecom.app",
                name="销售应用",
                config={
                    "corp_id": app.corp_id,
                    "agent_id": app.agent_id,
                    "api_base": str(sim_server.make_url("")).rstrip("/"),
                },
                secrets=SecretBox(secret_key).seal(
                    {
                        "secret": app.secret,
                        "token": app.token,
                        "encoding_aes_key": app.encoding_aes_key,
                    }
                ),
                callback_token=token,
            )
        )
        s.add(KeywordRule(keywords=[KEYWORD], match="contains", replies=[REPLY]))
        await bump_versions(s, [RULES])  # as the rule editor does: engines rebuild
    redis = aioredis.from_url(redis_url, decode_responses=True)
    cluster = Cluster(
        root=root,
        database_url=database_url,
        redis_url=redis_url,
        db=db,
        redis=redis,
        sim=sim,
        sim_server=sim_server,
        app=app,
        token=token,
        secret_key=secret_key,
    )
    cluster.http = aiohttp.ClientSession()
    return cluster


async def stop_cluster(cluster: Cluster) -> None:
    for proc in cluster.procs:
        proc.terminate()
    if cluster.http is not None:
        await cluster.http.close()
    await cluster.sim_server.close()
    await cluster.redis.aclose()
    await cluster.db.dispose()


def drop_connection(request: web.Request) -> None:
    """Close the client's connection without an answer (what a timeout looks like to it)."""
    transport = request.transport
    if transport is not None:
        transport.close()
