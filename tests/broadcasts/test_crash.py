"""Exactly once under SIGKILL (DESIGN.md invariants 3 and 4): a worker process running
the broadcast engine and the dispatcher is killed at random moments during a
20,000-recipient broadcast and restarted; the provider counts deliveries per recipient."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import func, select

from broadcasts.audience import AudienceRegistry
from broadcasts.control import Draft, create_broadcast, submit
from broadcasts.models import BroadcastRecipient, BroadcastRun
from broadcasts.policy import PolicyRegistry, WeComPolicy
from conversations.db import Database, create_engine, utcnow
from conversations.models import ChannelAccount, Customer, Identity

from .crash_runner import KIND

# the figure; CRASH_RECIPIENTS lowers it on a starved machine (see the report)
N = int(os.environ.get("CRASH_RECIPIENTS", "20000"))
DEADLINE = float(
    os.environ.get("CRASH_DEADLINE_SECONDS", "900")
)  # ~60 sends/s on a 2-core SQLite box
ROOT = Path(__file__).resolve().parents[2]


class CountingProvider:
    def __init__(self) -> None:
        self.per_recipient: Counter[str] = Counter()
        self.keys: set[str] = set()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/send", self.send)
        app.router.add_get("/lookup", self.lookup)
        return app

    async def send(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.per_recipient[body["to"]] += 1  # counts every accepted request, no dedupe
        self.keys.add(body["key"])
        return web.json_response({"ok": True})

    async def lookup(self, request: web.Request) -> web.Response:
        return web.json_response({"found": request.query["key"] in self.keys})


async def _seed(db: Database, provider_url: str) -> int:
    async with db.transaction() as s:
        account = ChannelAccount(
            kind=KIND,
            name="counting",
            callback_token="crash",
            config={"provider_url": provider_url, "marketing_hours": "00:00-24:00"},
        )
        s.add(account)
        await s.flush()
        now = utcnow()
        await s.execute(
            Customer.__table__.insert(),
            [
                {
                    "id": i,
                    "display_name": f"c{i}",
                    "profile": {},
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(1, N + 1)
            ],
        )
        await s.execute(
            Identity.__table__.insert(),
            [
                {
                    "customer_id": i,
                    "channel_kind": KIND,
                    "account_id": account.id,
                    "external_id": f"u{i}",
                    "created_at": now,
                }
                for i in range(1, N + 1)
            ],
        )
        policies = PolicyRegistry()
        policies.register(KIND, WeComPolicy())
        b = await create_broadcast(
            s,
            Draft(
                name="crash",
                audience={"kind": "channel", "channel_kind": KIND},
                content={"wecom": {"msgtype": "text", "text": "{customer_name} 你好"}},
                channel_order=[account.id],
            ),
            actor_id=None,
        )
        await submit(s, b, actor_id=None, policies=policies, audiences=AudienceRegistry(), now=now)
        return b.id


def _start(url: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.broadcasts.crash_runner", url],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _kill(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if proc.stderr is not None:
        proc.stderr.close()


def _alive(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        err = proc.stderr.read().decode()[-2000:] if proc.stderr else ""
        raise AssertionError(f"worker exited on its own: {err}")


async def _finished(db: Database, broadcast_id: int) -> bool:
    async with db.reading() as s:
        run = await s.scalar(select(BroadcastRun).where(BroadcastRun.broadcast_id == broadcast_id))
        if run is None or run.status != "completed":
            return False
        left = await s.scalar(
            select(func.count())
            .select_from(BroadcastRecipient)
            .where(BroadcastRecipient.run_id == run.id, BroadcastRecipient.status != "sent")
        )
        return left == 0


@pytest.mark.slow
@pytest.mark.timeout(DEADLINE + 120)
async def test_sigkill_at_random_points_neither_skips_nor_repeats(sqlite_url: str) -> None:
    provider = CountingProvider()
    server = TestServer(provider.app(), host="127.0.0.1")
    await server.start_server()
    db = Database(create_engine(sqlite_url))
    rng = random.Random(int(os.environ.get("CRASH_SEED", time.time())))
    proc: subprocess.Popen[bytes] | None = None
    try:
        broadcast_id = await _seed(db, str(server.make_url("")).rstrip("/"))
        kills = 0
        proc = _start(sqlite_url)
        deadline = time.monotonic() + DEADLINE
        while kills < 5:
            await asyncio.sleep(rng.uniform(1.0, 4.0))  # a random moment to kill at
            _alive(proc)
            _kill(proc)
            kills += 1
            proc = _start(sqlite_url)
        while not await _finished(db, broadcast_id):
            assert time.monotonic() < deadline, f"not finished; sent {len(provider.keys)}"
            _alive(proc)
            await asyncio.sleep(0.2)
        assert len(provider.per_recipient) == N
        assert set(provider.per_recipient.values()) == {1}
        assert sum(provider.per_recipient.values()) == N
    finally:
        if proc is not None:
            _kill(proc)
        await db.dispose()
        await server.close()
