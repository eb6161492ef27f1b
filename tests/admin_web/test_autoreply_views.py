"""The auto-reply console pages over HTTP: editors, import/export, try a message."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import aiohttp

from conversations.access import Role
from tests.system import System


async def _csrf(http: aiohttp.ClientSession, url: str) -> str:
    page = await (await http.get(url)).text()
    found = re.search(r'name="_csrf" value="([^"]+)"', page)
    assert found
    return found.group(1)


async def _admin(system: System) -> aiohttp.ClientSession:
    await system.add_staff("boss", Role.ADMIN)
    return await system.login("boss")


async def _post(
    http: aiohttp.ClientSession, system: System, path: str, data: Any
) -> aiohttp.ClientResponse:
    data["_csrf"] = await _csrf(http, f"{system.base}/autoreply/rules")
    return await http.post(f"{system.base}{path}", data=data, allow_redirects=False)


async def test_rule_created_in_editor_answers_in_try_box(sqlite_system: System) -> None:
    http = await _admin(sqlite_system)
    async with http:
        resp = await _post(
            http,
            sqlite_system,
            "/autoreply/rules",
            {
                "name": "报价",
                "match": "contains",
                "keywords": "价格\n报价",
                "replies": "标准版 ¥199/月",
                "priority": "5",
                "enabled": "on",
            },
        )
        assert resp.status == 302
        listing = await (await http.get(f"{sqlite_system.base}/autoreply/rules")).text()
        assert "报价" in listing and "价格、报价" in listing
        tried = await (
            await http.get(
                f"{sqlite_system.base}/autoreply/try",
                params={"text": "请问价格多少", "account": str(sqlite_system.wecom_account_id)},
            )
        ).text()
        assert '<span id="outcome">rule</span>' in tried


async def test_invalid_regex_is_shown_to_the_editor(sqlite_system: System) -> None:
    http = await _admin(sqlite_system)
    async with http:
        resp = await _post(
            http,
            sqlite_system,
            "/autoreply/rules",
            {"match": "regex", "pattern": "(", "replies": "x"},
        )
        assert resp.status == 400
        assert "bad regular expression" in await resp.text()


async def test_faq_import_then_export_round_trip(sqlite_system: System) -> None:
    http = await _admin(sqlite_system)
    csv_body = (
        "slug,question,alternatives,answer\nrefund,怎么申请退款,退款流程|我想退货,订单页申请\n"
    )
    async with http:
        form = aiohttp.FormData()
        form.add_field("_csrf", await _csrf(http, f"{sqlite_system.base}/autoreply/faq"))
        form.add_field(
            "file", csv_body.encode("utf-8-sig"), filename="faq.csv", content_type="text/csv"
        )
        resp = await http.post(
            f"{sqlite_system.base}/autoreply/faq/import", data=form, allow_redirects=False
        )
        assert resp.status == 302
        assert "1 new" in dict(parse_qsl(urlsplit(resp.headers["Location"]).query))["message"]
        exported = await (await http.get(f"{sqlite_system.base}/autoreply/faq/export.csv")).read()
        assert "怎么申请退款" in exported.decode("utf-8-sig")
        explained = await (
            await http.get(
                f"{sqlite_system.base}/autoreply/api/explain", params={"text": "请问怎么退款"}
            )
        ).json()
        assert explained["outcome"] == "faq" and explained["faq"][0]["slug"] == "refund"


async def test_sales_role_may_not_edit_rules(sqlite_system: System) -> None:
    await sqlite_system.add_staff("li", Role.SALES)
    http = await sqlite_system.login("li")
    async with http:
        resp = await http.get(f"{sqlite_system.base}/autoreply/rules")
        assert resp.status == 403
