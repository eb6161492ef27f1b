"""What the tagging, auto-reply and broadcasts packages plug into: navigation entries,
sections on the customer, conversation and dashboard pages, extra inbox filters."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from sqlalchemy import ColumnElement

from admin_web.deps import NavEntry
from conversations.models import Conversation
from tests.admin_web.people import Org, console_deps
from tests.system import System


async def test_nav_entries_show_to_their_roles(console: System, org: Org) -> None:
    console_deps(console).nav.append(
        NavEntry("/broadcasts", "群发", "Broadcasts", frozenset({"admin", "marketer"}), 50)
    )
    marketer, sales = await console.login("marketer"), await console.login("sales_a")
    try:
        assert 'href="/broadcasts"' in await (await marketer.get(f"{console.base}/me")).text()
        assert 'href="/broadcasts"' not in await (await sales.get(f"{console.base}/me")).text()
    finally:
        await marketer.close()
        await sales.close()


async def test_pages_show_other_packages_sections(console: System, org: Org) -> None:
    deps = console_deps(console)

    async def tags(_request: web.Request, customer_id: int) -> str:
        return f"<b>tags of {customer_id}</b>"

    async def conv_tags(_request: web.Request, conversation_id: int) -> str:
        return f"<b>conversation {conversation_id}</b>"

    async def broadcasts(_r: web.Request, _since: datetime, _until: datetime) -> str:
        return "<b>broadcast results</b>"

    deps.customer_panels.append(tags)
    deps.conversation_panels.append(conv_tags)
    deps.dashboard_panels.append(broadcasts)
    http = await console.login("admin")
    try:
        customer = await (
            await http.get(f"{console.base}/customers/{org.customers['sales_a']}")
        ).text()
        conversation = await (
            await http.get(f"{console.base}/conversations/{org.conversations['sales_a']}")
        ).text()
        dashboard = await (await http.get(f"{console.base}/dashboard")).text()
    finally:
        await http.close()
    assert f"<b>tags of {org.customers['sales_a']}</b>" in customer
    assert f"<b>conversation {org.conversations['sales_a']}</b>" in conversation
    assert "<b>broadcast results</b>" in dashboard


class OnlyConversation:
    def __init__(self, conversation_id: int) -> None:
        self.conversation_id = conversation_id

    async def control(self, _request: web.Request) -> str:
        return '<select name="tag"><option value="vip">VIP</option></select>'

    def condition(self, request: web.Request) -> ColumnElement[bool] | None:
        if request.query.get("tag") != "vip":
            return None
        return Conversation.id == self.conversation_id


async def test_inbox_filter_hooks_add_a_control_and_a_condition(console: System, org: Org) -> None:
    console_deps(console).inbox_filters.append(OnlyConversation(org.conversations["sales_a"]))
    http = await console.login("admin")
    try:
        everything = await (await http.get(f"{console.base}/inbox")).text()
        filtered = await (await http.get(f"{console.base}/inbox", params={"tag": "vip"})).text()
    finally:
        await http.close()
    assert '<select name="tag">' in everything
    assert everything.count("data-conversation=") == 4
    assert filtered.count("data-conversation=") == 1
