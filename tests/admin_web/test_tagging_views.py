"""Tagging console pages over HTTP: tag manager, live segment count, import dry-run."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from admin_web import tagging_views
from admin_web.app import setup_console
from admin_web.deps import ConsoleDeps
from channels.state import MemoryState
from conversations.access import Role
from conversations.db import Database
from conversations.models import Customer
from conversations.staff import create_staff
from tests.tagging import factories as f

PASSWORD = "s3cret-pass-123"


@dataclass
class Console:
    http: aiohttp.ClientSession
    base: str
    csrf: str


@pytest.fixture
async def console(sqlite_db: Database) -> AsyncIterator[Console]:
    app = web.Application()
    setup_console(
        app,
        ConsoleDeps(
            db=sqlite_db,
            secret_key="k" * 40,
            public_url="http://127.0.0.1",
            state=MemoryState(),
            wake_outbox=lambda: None,
            extra_routes=[tagging_views.routes],
        ),
    )
    async with sqlite_db.transaction() as s:
        await create_staff(s, username="boss", password=PASSWORD, role=Role.ADMIN)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    base = str(server.make_url("")).rstrip("/")
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    page = await (await http.get(f"{base}/login")).text()
    token = re.search(r'name="_csrf" value="([^"]+)"', page)
    assert token
    resp = await http.post(
        f"{base}/login",
        data={"username": "boss", "password": PASSWORD, "_csrf": token.group(1), "next": "/"},
        allow_redirects=False,
    )
    assert resp.status == 302
    page = await (await http.get(f"{base}/tagging/tags")).text()
    token = re.search(r'name="_csrf" value="([^"]+)"', page)
    assert token
    yield Console(http, base, token.group(1))
    await http.close()
    await server.close()


async def test_tag_manager_creates_groups_and_tags(console: Console) -> None:
    c = console
    await c.http.post(f"{c.base}/tagging/groups", data={"_csrf": c.csrf, "name": "意向"})
    page = await (await c.http.get(f"{c.base}/tagging/tags")).text()
    group_id = re.search(r'<option value="(\d+)">意向</option>', page)
    assert group_id
    await c.http.post(
        f"{c.base}/tagging/tags",
        data={"_csrf": c.csrf, "group_id": group_id.group(1), "name": "询价"},
    )
    page = await (await c.http.get(f"{c.base}/tagging/tags")).text()
    assert "询价" in page


async def test_live_count_answers_and_points_at_errors(
    console: Console, sqlite_db: Database
) -> None:
    async with sqlite_db.transaction() as s:
        await f.customer(s, "a", tags=("意向/询价",), province="广东")
        await f.customer(s, "b", tags=("意向/询价",))
    c = console
    headers = {"X-CSRF-Token": c.csrf}
    ok = await c.http.post(
        f"{c.base}/tagging/api/segments/count",
        json={
            "ast": {
                "and": [
                    {"field": "tag", "op": ":", "value": "意向/询价"},
                    {"field": "region", "op": ":", "value": "广东"},
                ]
            }
        },
        headers=headers,
    )
    assert (ok.status, (await ok.json())["count"]) == (200, 1)
    assert (await ok.json())["expression"] == "tag:意向/询价 AND region:广东"
    bad = await c.http.post(
        f"{c.base}/tagging/api/segments/count", json={"expression": "tag:"}, headers=headers
    )
    body = await bad.json()
    assert bad.status == 400 and body["position"] == 4 and "^" in body["pointer"]


async def test_live_count_without_csrf_header_is_refused(console: Console) -> None:
    resp = await console.http.post(
        f"{console.base}/tagging/api/segments/count", json={"expression": "region:广东"}
    )
    assert resp.status == 403


async def test_import_is_checked_before_anything_is_written(
    console: Console, sqlite_db: Database
) -> None:
    c = console
    csv_bytes = "姓名,手机\n张三,13800138000\n李四,123\n".encode()
    form = aiohttp.FormData()
    form.add_field("_csrf", c.csrf)
    form.add_field("mode", "dry")
    form.add_field("file", csv_bytes, filename="c.csv", content_type="text/csv")
    page = await (await c.http.post(f"{c.base}/tagging/import", data=form)).text()
    assert 'id="import-errors"' in page and "123" in page
    async with sqlite_db.reading() as s:
        assert (await s.scalars(select(Customer))).all() == []
    data_b64 = re.search(r'name="data_b64" value="([^"]+)"', page)
    assert data_b64
    await c.http.post(
        f"{c.base}/tagging/import",
        data={"_csrf": c.csrf, "mode": "apply", "filename": "c.csv", "data_b64": data_b64.group(1)},
    )
    async with sqlite_db.reading() as s:
        names = [c.display_name for c in (await s.scalars(select(Customer))).all()]
    assert names == ["张三"]


async def test_statistics_and_segment_pages_render(console: Console, sqlite_db: Database) -> None:
    async with sqlite_db.transaction() as s:
        await f.customer(s, "a", tags=("意向/询价",), province="广东")
    c = console
    stats = await c.http.get(f"{c.base}/tagging/stats")
    assert stats.status == 200 and "广东" in await stats.text()
    seg = await c.http.get(f"{c.base}/tagging/segments")
    assert seg.status == 200 and 'id="segment-builder"' in await seg.text()
    api = await c.http.get(f"{c.base}/tagging/api/stats/province")
    assert await api.json() == [{"label": "广东", "count": 1}]
