"""The simulator's contact-way endpoints keep WeCom's limits and errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from channels.state import MemoryState
from channels.wecom.api import WeComApi
from channels.wecom.errors import WeComApiError
from channels.wecom.simulator import SimApp, WeComSimulator, new_app

PATH = "/cgi-bin/externalcontact/"


@pytest.fixture
async def sim() -> AsyncIterator[tuple[WeComSimulator, TestServer, SimApp]]:
    simulator = WeComSimulator()
    app = simulator.add_app(new_app("wwsimways0001"))
    simulator.add_member(app.corp_id, "lisi")
    simulator.add_member(app.corp_id, "wangwu")
    server = TestServer(simulator.app(), host="127.0.0.1")
    await server.start_server()
    yield simulator, server, app
    await server.close()


async def _call(
    setup: tuple[WeComSimulator, TestServer, SimApp], name: str, body: dict[str, Any]
) -> dict[str, Any]:
    _, server, app = setup
    async with aiohttp.ClientSession() as http:
        api = WeComApi(
            http,
            MemoryState(),
            corp_id=app.corp_id,
            secret=app.secret,
            base_url=str(server.make_url("")).rstrip("/"),
        )
        return await api.call("POST", PATH + name, body=body)


def _way(**changes: Any) -> dict[str, Any]:
    return {"type": 1, "scene": 2, "state": "poster", "user": ["lisi"], **changes}


async def test_add_returns_config_id_and_a_qr_png(sim: Any) -> None:
    data = await _call(sim, "add_contact_way", _way())
    async with aiohttp.ClientSession() as http, http.get(data["qr_code"]) as resp:
        png = await resp.read()
    assert resp.content_type == "image/png" and png.startswith(b"\x89PNG")
    got = await _call(sim, "get_contact_way", {"config_id": data["config_id"]})
    assert (got["contact_way"]["state"], got["contact_way"]["user"]) == ("poster", ["lisi"])


@pytest.mark.parametrize(
    ("body", "errcode"),
    [
        (_way(state="s" * 31), 40058),
        (_way(user=["lisi", "wangwu"]), 40058),  # type 1 holds one user
        (_way(user=["nobody"]), 60111),
        (_way(type=3), 40058),
    ],
)
async def test_add_refuses_what_wecom_refuses(sim: Any, body: dict[str, Any], errcode: int) -> None:
    with pytest.raises(WeComApiError) as caught:
        await _call(sim, "add_contact_way", body)
    assert caught.value.errcode == errcode


async def test_unknown_config_id_is_refused(sim: Any) -> None:
    with pytest.raises(WeComApiError) as caught:
        await _call(sim, "update_contact_way", {"config_id": "nope", "user": ["lisi"]})
    assert caught.value.errcode == 40058


async def test_codes_per_corp_are_capped(sim: Any) -> None:
    sim[0].contact_ways.max_per_corp = 1
    await _call(sim, "add_contact_way", _way())
    with pytest.raises(WeComApiError):
        await _call(sim, "add_contact_way", _way(state="second"))


async def test_update_changes_who_a_scan_reaches_and_delete_removes(sim: Any) -> None:
    config_id = (await _call(sim, "add_contact_way", _way()))["config_id"]
    await _call(sim, "update_contact_way", {"config_id": config_id, "user": ["wangwu"]})
    way = sim[0].contact_ways.ways[config_id]
    assert sim[0].contact_ways.scan(way) == "wangwu"
    await _call(sim, "del_contact_way", {"config_id": config_id})
    listed = await _call(sim, "list_contact_way", {"limit": 100})
    assert listed["contact_way"] == []
