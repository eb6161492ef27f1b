"""Console pages: create, confirm, see progress, export; the public click redirect."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from admin_web import broadcast_views
from admin_web.app import setup_console
from admin_web.deps import ConsoleDeps
from broadcasts.engine import BroadcastEngine
from broadcasts.models import Broadcast
from broadcasts.settings import BroadcastSettings
from channels.state import MemoryState
from conversations.access import Role
from conversations.db import Database
from conversations.models import ChannelAccount, Customer, OutboxItem
from conversations.staff import create_staff

SECRET = "s" * 40


@pytest.fixture
async def console(sqlite_db: Database) -> AsyncIterator[tuple[str, Database]]:
    app = web.Application()
    setup_console(
        app,
        ConsoleDeps(
            db=sqlite_db,
            secret_key=SECRET,
            public_url="http://127.0.0.1",
            state=MemoryState(),
            wake_outbox=lambda: None,
            extra_routes=[broadcast_views.routes],
        ),
    )
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    async with sqlite_db.transaction() as s:
        await create_staff(s, username="mk", password="s3cret-pass-123", role=Role.MARKETER)
        s.add(ChannelAccount(kind="wecom.kf", name="客服", callback_token="t", config={}))
        s.add(Customer(display_name="张三", phone="+8613800000001"))
    yield str(server.make_url("")).rstrip("/"), sqlite_db
    await server.close()


async def _login(http: aiohttp.ClientSession, base: str) -> str:
    page = await (await http.get(f"{base}/login")).text()
    csrf = re.search(r'name="_csrf" value="([^"]+)"', page)
    assert csrf
    resp = await http.post(
        f"{base}/login",
        data={
            "username": "mk",
            "password": "s3cret-pass-123",
            "_csrf": csrf.group(1),
            "next": "/broadcasts",
        },
        allow_redirects=False,
    )
    assert resp.status == 302
    page = await (await http.get(f"{base}/broadcasts/new")).text()
    token = re.search(r'name="_csrf" value="([^"]+)"', page)
    assert token
    return token.group(1)


async def test_marketer_creates_confirms_and_exports_a_broadcast(
    console: tuple[str, Database],
) -> None:
    base, db = console
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        csrf = await _login(http, base)
        resp = await http.post(
            f"{base}/broadcasts",
            data={
                "_csrf": csrf,
                "name": "新品",
                "audience_kind": "upload",
                "upload": "phone,name\n13800000001,张三\n13900000002,李四\n",
                "channel_order": "1",
                "wecom_text": "{customer_name}您好 https://shop.example.com/a",
                "schedule_kind": "now",
            },
            allow_redirects=False,
        )
        assert resp.status == 302
        detail = resp.headers["Location"]
        resp = await http.post(
            f"{base}{detail}/submit", data={"_csrf": csrf}, allow_redirects=False
        )
        assert resp.status == 302
        async with db.reading() as s:
            b = await s.scalar(select(Broadcast))
            assert b is not None and b.status == "scheduled"
            assert len(b.audience["customer_ids"]) == 2  # 张三 matched, 李四 created
        await BroadcastEngine(db, BroadcastSettings(secret_key=SECRET, public_url=base)).tick()
        page = await (await http.get(f"{base}{detail}")).text()
        assert "<progress" in page
        csv_text = await (await http.get(f"{base}/broadcasts/runs/1/export.csv")).text()
        assert "skipped" in csv_text  # no WeCom identity: unreachable, with the reason
    async with aiohttp.ClientSession() as anonymous:
        resp = await anonymous.get(f"{base}/r/not-a-token", allow_redirects=False)
        assert resp.status == 404


BEIJING_NOON = datetime(2026, 6, 1, 4, 0, tzinfo=UTC)


async def test_click_redirect_is_public_and_counted(console: tuple[str, Database]) -> None:
    base, db = console
    from broadcasts.control import Draft, create_broadcast
    from conversations.models import Identity

    async with db.transaction() as s:
        s.add(Identity(customer_id=1, channel_kind="wecom.kf", account_id=1, external_id="wm1"))
        b = await create_broadcast(
            s,
            Draft(
                name="x",
                audience={"kind": "customers", "customer_ids": [1]},
                content={"wecom": {"msgtype": "text", "text": "看 https://shop.example.com/a"}},
                channel_order=[1],
            ),
            actor_id=None,
        )
        b.status, b.next_fire_at = "scheduled", BEIJING_NOON
    # at noon Beijing time, inside the account's default marketing hours whenever CI runs
    await BroadcastEngine(
        db, BroadcastSettings(secret_key=SECRET, public_url=base), clock=lambda: BEIJING_NOON
    ).tick()
    async with db.reading() as s:
        item = await s.scalar(select(OutboxItem))
        assert item is not None
    link = re.search(r"(/r/\S+)", item.payload["text"])
    assert link
    async with aiohttp.ClientSession() as anonymous:
        resp = await anonymous.get(f"{base}{link.group(1)}", allow_redirects=False)
        assert resp.status == 302
        assert resp.headers["Location"] == "https://shop.example.com/a"
