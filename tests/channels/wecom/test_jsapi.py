"""JS-SDK signing (known-answer vector), ticket caching/refresh/single flight, and the
OAuth code → userid look-up, against the simulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from channels.state import MemoryState
from channels.wecom.api import WeComApi
from channels.wecom.errors import WeComApiError
from channels.wecom.jsapi import JsApi, jsapi_signature, oauth_url
from channels.wecom.simulator import SimApp, WeComSimulator, new_app


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Rig:
    sim: WeComSimulator
    app: SimApp
    clock: Clock
    state: MemoryState
    http: aiohttp.ClientSession
    base: str

    def jsapi(self) -> JsApi:
        api = WeComApi(
            self.http,
            self.state,
            corp_id=self.app.corp_id,
            secret=self.app.secret,
            base_url=self.base,
        )
        return JsApi(api, self.app.agent_id, clock=self.clock)


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    clock = Clock()
    sim = WeComSimulator(clock=clock)
    app = sim.add_app(new_app())
    server = TestServer(sim.app(), host="127.0.0.1")
    await server.start_server()
    async with aiohttp.ClientSession() as http:
        # the state's clock moves with the simulator's, so cached tickets expire together
        yield Rig(sim, app, clock, MemoryState(clock=clock), http, str(server.make_url("")))
    await server.close()


def test_signature_matches_the_js_sdk_documentation_vector() -> None:
    # WeChat JS-SDK documentation, 附录1 JS-SDK使用权限签名算法 (quoted in issue 14)
    ticket = (
        "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg"
    )
    signature = jsapi_signature(
        ticket, "Wm3WZYTPz0wzccnW", 1414587457, "http://mp.weixin.qq.com?params=value"
    )
    assert signature == "0f9de62fce790f9a083d5c99e95740ceb90c27ed"


def test_signature_ignores_the_url_fragment() -> None:
    plain = jsapi_signature("t", "n", 1, "https://crm.example.com/sidebar/?a=1")
    assert jsapi_signature("t", "n", 1, "https://crm.example.com/sidebar/?a=1#/tags") == plain


def test_oauth_url_is_the_silent_authorisation_link() -> None:
    url = oauth_url("wwcorp", 1000002, "https://crm.example.com/sidebar/oauth?next=/x", "s1")
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert parts.netloc == "open.weixin.qq.com" and parts.fragment == "wechat_redirect"
    assert query["appid"] == ["wwcorp"] and query["agentid"] == ["1000002"]
    assert query["scope"] == ["snsapi_base"] and query["response_type"] == ["code"]
    assert query["redirect_uri"] == ["https://crm.example.com/sidebar/oauth?next=/x"]


async def test_signed_agent_config_verifies_with_the_apps_ticket(rig: Rig) -> None:
    signed = await rig.jsapi().sign("agent", "https://crm.example.com/sidebar/#x")
    ticket = rig.sim.jsapi.current_ticket(rig.app.corp_id, rig.app.agent_id)
    assert ticket is not None
    expected = jsapi_signature(
        ticket, signed.nonce, signed.timestamp, "https://crm.example.com/sidebar/"
    )
    assert signed.signature == expected
    assert signed.as_agent_config()["agentid"] == rig.app.agent_id


async def test_corp_and_agent_tickets_are_different(rig: Rig) -> None:
    jsapi = rig.jsapi()
    assert await jsapi.ticket("corp") != await jsapi.ticket("agent")
    assert await jsapi.ticket("corp") == rig.sim.jsapi.current_ticket(rig.app.corp_id)


async def test_ticket_is_fetched_once_under_concurrency_and_across_clients(rig: Rig) -> None:
    first, second = rig.jsapi(), rig.jsapi()  # two processes sharing one state
    tickets = await asyncio.gather(*(j.ticket("agent") for j in (first, second) for _ in range(8)))
    assert len(set(tickets)) == 1
    assert rig.sim.jsapi.ticket_calls == 1


async def test_ticket_is_refreshed_before_it_expires(rig: Rig) -> None:
    jsapi = rig.jsapi()
    await jsapi.ticket("corp")
    rig.clock.now += 7200 - 299  # inside the last five minutes of validity
    await jsapi.ticket("corp")
    assert rig.sim.jsapi.ticket_calls == 2


async def test_oauth_code_gives_the_members_userid(rig: Rig) -> None:
    code = rig.sim.jsapi.issue_code(rig.app.corp_id, "zhangsan")
    identity = await rig.jsapi().identity_for_code(code)
    assert identity.userid == "zhangsan"


async def test_oauth_code_of_a_non_member_has_no_userid(rig: Rig) -> None:
    code = rig.sim.jsapi.issue_code(rig.app.corp_id, openid="oOutsider")
    identity = await rig.jsapi().identity_for_code(code)
    assert identity.userid is None and identity.openid == "oOutsider"


async def test_oauth_code_works_once(rig: Rig) -> None:
    jsapi = rig.jsapi()
    code = rig.sim.jsapi.issue_code(rig.app.corp_id, "zhangsan")
    await jsapi.identity_for_code(code)
    with pytest.raises(WeComApiError) as err:
        await jsapi.identity_for_code(code)
    assert err.value.errcode == 40029


async def test_oauth_code_expires_after_five_minutes(rig: Rig) -> None:
    code = rig.sim.jsapi.issue_code(rig.app.corp_id, "zhangsan")
    rig.clock.now += 301
    with pytest.raises(WeComApiError) as err:
        await rig.jsapi().identity_for_code(code)
    assert err.value.errcode == 40029


async def test_group_chat_lists_members_and_customers() -> None:
    # groupchat/get answer as documented (doc 92122), served by a one-route stand-in
    async def gettoken(_r: web.Request) -> web.Response:
        return web.json_response({"errcode": 0, "access_token": "T", "expires_in": 7200})

    async def groupchat(request: web.Request) -> web.Response:
        assert (await request.json())["chat_id"] == "wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA"
        return web.json_response(
            {
                "errcode": 0,
                "errmsg": "ok",
                "group_chat": {
                    "chat_id": "wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA",
                    "name": "销售客服群",
                    "owner": "ZhuShengBen",
                    "create_time": 1572505490,
                    "member_list": [
                        {"userid": "abel", "type": 1, "join_time": 1572505491, "name": "李"},
                        {
                            "userid": "wmOgQhDgAAuXFJGwbve4g4iyTgAAAA",
                            "type": 2,
                            "join_time": 1572505491,
                            "name": "王先生",
                        },
                    ],
                },
            }
        )

    app = web.Application()
    app.router.add_get("/cgi-bin/gettoken", gettoken)
    app.router.add_post("/cgi-bin/externalcontact/groupchat/get", groupchat)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            api = WeComApi(
                http, MemoryState(), corp_id="ww1", secret="s", base_url=str(server.make_url(""))
            )
            chat = await JsApi(api, 1).group_chat("wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA")
    finally:
        await server.close()
    assert chat.name == "销售客服群"
    assert [(m.userid, m.external) for m in chat.members] == [
        ("abel", False),
        ("wmOgQhDgAAuXFJGwbve4g4iyTgAAAA", True),
    ]
