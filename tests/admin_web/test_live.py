"""Live updates: a customer's message reaches open consoles through server-sent events,
only those allowed to see the conversation."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from admin_web.live import CONSOLE_CHANNEL, InProcessBus, visible_to
from channels.wecom.simulator import post_callback, sign_callback, text_message_xml
from conversations.access import Role, Viewer
from tests.admin_web.people import Org
from tests.system import System


async def _first_event(resp: aiohttp.ClientResponse) -> dict[str, Any]:
    event = ""
    async for raw in resp.content:
        line = raw.decode().rstrip("\n")
        if line.startswith("event:"):
            event = line.split(":", 1)[1].strip()
        elif line.startswith("data:") and event == "message":
            data: dict[str, Any] = json.loads(line.split(":", 1)[1])
            return data
    raise AssertionError("stream ended")


async def test_new_customer_message_is_pushed_to_the_console(console: System, org: Org) -> None:
    http = await console.login("sales_a")
    try:
        stream = await http.get(f"{console.base}/live/events")
        assert stream.headers["Content-Type"] == "text/event-stream"
        signed = sign_callback(
            console.wecom, text_message_xml(console.wecom, "new_customer", "在吗？想咨询一下", 9001)
        )
        async with aiohttp.ClientSession() as wecom:
            assert (await post_callback(wecom, console.callback_url(), signed))[0] == 200
        event = await asyncio.wait_for(_first_event(stream), timeout=10)
        assert event["direction"] == "in" and event["preview"] == "在吗？想咨询一下"
        stream.close()
    finally:
        await http.close()


async def test_in_process_bus_fans_out_to_every_subscriber() -> None:
    bus = InProcessBus()
    first, second = bus.subscribe(CONSOLE_CHANNEL), bus.subscribe(CONSOLE_CHANNEL)
    pending = [asyncio.ensure_future(anext(first)), asyncio.ensure_future(anext(second))]
    await bus.publish(CONSOLE_CHANNEL, {"type": "message", "n": 1})
    assert [e["n"] for e in await asyncio.gather(*pending)] == [1, 1]
    await first.aclose()
    await second.aclose()


def test_events_are_filtered_by_who_may_see_the_conversation() -> None:
    event = {"type": "message", "assignee_id": 7, "team_id": 1}
    assert visible_to(Viewer(7, Role.SALES, 1), event)
    assert not visible_to(Viewer(8, Role.SALES, 1), event)
    assert visible_to(Viewer(9, Role.MANAGER, 1), event)
    assert not visible_to(Viewer(9, Role.MANAGER, 2), event)
    assert not visible_to(Viewer(10, Role.MARKETER), event)
    assert visible_to(Viewer(8, Role.SALES, 1), {"assignee_id": None, "team_id": None})
