"""The chat sidebar's routes: WeCom OAuth sign-in, the customer card and its permission
(followers and the console's scope), notes, intent and the material library."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import aiohttp
from sqlalchemy import update

from channels.wecom.models import FollowRelation
from conversations.models import StaffUser
from tagging.models import CustomerProfile
from tests.admin_web.people import Org
from tests.system import System

EXTERNAL = "wmRouteCustomer0001"


async def _link(console: System, org: Org, username: str, userid: str) -> None:
    async with console.services.db.transaction() as s:
        await s.execute(
            update(StaffUser).where(StaffUser.id == org.staff[username]).values(wecom_userid=userid)
        )


async def _follow(console: System, customer_id: int, userid: str) -> None:
    async with console.services.db.transaction() as s:
        s.add(
            FollowRelation(
                account_id=console.wecom_account_id,
                customer_id=customer_id,
                external_userid=EXTERNAL,
                userid=userid,
            )
        )


async def _oauth_session(console: System, userid: str) -> aiohttp.ClientSession:
    """What the WeCom client does: open the page, follow WeCom's redirect back with a code."""
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    resp = await http.get(f"{console.base}/sidebar/", allow_redirects=False)
    assert resp.status == 302
    query = parse_qs(urlsplit(resp.headers["Location"]).query)
    code = console.sim.jsapi.issue_code(console.wecom.corp_id, userid)
    back = await http.get(
        f"{console.base}/sidebar/oauth",
        params={"code": code, "state": query["state"][0], "next": "/sidebar/"},
        allow_redirects=False,
    )
    assert back.status == 302, await back.text()
    return http


async def _csrf(http: aiohttp.ClientSession, console: System) -> dict[str, str]:
    page = await (await http.get(f"{console.base}/sidebar/")).text()
    token = re.search(r'name="csrf-token" content="([^"]+)"', page)
    assert token
    return {"X-CSRF-Token": token.group(1)}


async def test_unsigned_visitor_is_sent_to_wecom_oauth(console: System, org: Org) -> None:
    async with aiohttp.ClientSession() as http:
        resp = await http.get(f"{console.base}/sidebar/", allow_redirects=False)
    target = urlsplit(resp.headers["Location"])
    assert resp.status == 302 and target.netloc == "open.weixin.qq.com"
    assert parse_qs(target.query)["appid"] == [console.wecom.corp_id]


async def test_oauth_signs_in_the_linked_salesperson(console: System, org: Org) -> None:
    await _link(console, org, "sales_a", "zhangsan")
    http = await _oauth_session(console, "zhangsan")
    try:
        resp = await http.get(f"{console.base}/sidebar/")
        assert resp.status == 200 and "sidebar.js" in await resp.text()
    finally:
        await http.close()


async def test_sidebar_sign_in_does_not_open_the_console(console: System, org: Org) -> None:
    await _link(console, org, "sales_a", "zhangsan")
    http = await _oauth_session(console, "zhangsan")
    try:
        resp = await http.get(f"{console.base}/inbox", allow_redirects=False)
        assert resp.status == 302 and resp.headers["Location"].startswith("/login")
    finally:
        await http.close()


async def test_oauth_of_an_unlinked_member_is_refused(console: System, org: Org) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        resp = await http.get(f"{console.base}/sidebar/", allow_redirects=False)
        state = parse_qs(urlsplit(resp.headers["Location"]).query)["state"][0]
        code = console.sim.jsapi.issue_code(console.wecom.corp_id, "nobody")
        back = await http.get(
            f"{console.base}/sidebar/oauth", params={"code": code, "state": state}
        )
        assert back.status == 403


async def test_oauth_with_a_wrong_state_is_refused(console: System, org: Org) -> None:
    await _link(console, org, "sales_a", "zhangsan")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        await http.get(f"{console.base}/sidebar/", allow_redirects=False)
        code = console.sim.jsapi.issue_code(console.wecom.corp_id, "zhangsan")
        back = await http.get(
            f"{console.base}/sidebar/oauth", params={"code": code, "state": "forged"}
        )
        assert back.status == 400


async def test_follower_sees_a_customer_outside_their_console_scope(
    console: System, org: Org
) -> None:
    # sales_b's customer, followed in WeCom by sales_a too
    await _link(console, org, "sales_a", "zhangsan")
    await _follow(console, org.customers["sales_b"], "zhangsan")
    http = await _oauth_session(console, "zhangsan")
    try:
        resp = await http.get(
            f"{console.base}/sidebar/api/contact", params={"external_userid": EXTERNAL}
        )
        card = await resp.json()
        assert resp.status == 200 and card["customer"]["id"] == org.customers["sales_b"]
        assert [f["userid"] for f in card["followers"]] == ["zhangsan"]
    finally:
        await http.close()


async def test_non_follower_outside_scope_is_refused(console: System, org: Org) -> None:
    await _link(console, org, "sales_a", "zhangsan")
    await _follow(console, org.customers["sales_b"], "lisi")
    http = await _oauth_session(console, "zhangsan")
    try:
        resp = await http.get(
            f"{console.base}/sidebar/api/contact", params={"external_userid": EXTERNAL}
        )
        assert resp.status == 403
    finally:
        await http.close()


async def test_config_signs_only_our_sidebar_pages(console: System, org: Org) -> None:
    http = await console.login("sales_a")
    try:
        ours = await http.get(
            f"{console.base}/sidebar/api/config", params={"url": f"{console.base}/sidebar/"}
        )
        theirs = await http.get(
            f"{console.base}/sidebar/api/config", params={"url": "https://evil.example/sidebar/"}
        )
        signed = await ours.json()
        assert signed["agentConfig"]["agentid"] == console.wecom.agent_id
        assert "sendChatMessage" in signed["agentConfig"]["jsApiList"]
        assert theirs.status == 400
    finally:
        await http.close()


async def test_note_is_added_to_the_customers_conversation(console: System, org: Org) -> None:
    http = await console.login("sales_a")
    try:
        headers = await _csrf(http, console)
        customer = org.customers["sales_a"]
        resp = await http.post(
            f"{console.base}/sidebar/api/notes",
            json={"customer_id": customer, "text": "下周回访"},
            headers=headers,
        )
        assert resp.status == 200
        card = await (
            await http.get(f"{console.base}/sidebar/api/customer", params={"id": customer})
        ).json()
        assert [n["text"] for n in card["notes"]] == ["下周回访"]
    finally:
        await http.close()


async def test_intent_is_marked_on_the_profile(console: System, org: Org) -> None:
    http = await console.login("sales_a")
    try:
        resp = await http.post(
            f"{console.base}/sidebar/api/intent",
            json={"customer_id": org.customers["sales_a"], "level": "高"},
            headers=await _csrf(http, console),
        )
        assert resp.status == 200
    finally:
        await http.close()
    async with console.services.db.reading() as s:
        profile = await s.get(CustomerProfile, org.customers["sales_a"])
        assert profile is not None and profile.intent_level == "high"


async def test_materials_are_searchable_in_chinese_and_personal(console: System, org: Org) -> None:
    http = await console.login("sales_a")
    other = await console.login("sales_b")
    try:
        created = await http.post(
            f"{console.base}/sidebar/api/materials",
            json={
                "kind": "link",
                "title": "春季新品价格表",
                "url": "https://example.com/prices",
                "body": "2026 春季",
            },
            headers=await _csrf(http, console),
        )
        assert created.status == 200
        found = await (
            await http.get(f"{console.base}/sidebar/api/materials", params={"q": "价格"})
        ).json()
        assert [i["title"] for i in found["items"]] == ["春季新品价格表"]
        missing = await (
            await http.get(f"{console.base}/sidebar/api/materials", params={"q": "退货"})
        ).json()
        assert missing["items"] == []
        theirs = await (await other.get(f"{console.base}/sidebar/api/materials")).json()
        assert theirs["items"] == []  # personal: only its owner sees it
    finally:
        await http.close()
        await other.close()


async def test_salesperson_may_not_add_shared_materials(console: System, org: Org) -> None:
    http = await console.login("sales_a")
    try:
        resp = await http.post(
            f"{console.base}/sidebar/api/materials",
            json={"kind": "text", "title": "t", "body": "b", "shared": True},
            headers=await _csrf(http, console),
        )
        assert resp.status == 403
    finally:
        await http.close()
