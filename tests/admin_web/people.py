"""A small sales organisation on a running system: two teams, every role, conversations
assigned to different people; and the console wiring the lead does in bot.runtime."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from sqlalchemy import select

from admin_web.deps import DEPS_KEY, ConnectionResult, ConsoleDeps
from admin_web.live import pipeline_hook
from conversations.access import Role
from conversations.actions import queue_outbound, record_inbound
from conversations.models import ChannelAccount, Conversation, Customer, StaffUser, Team
from conversations.search import index_backlog
from conversations.types import InboundMessage, MessageKind, Purpose, SenderType
from tests.system import System

PASSWORD = "s3cret-pass-123"


def console_deps(system: System) -> ConsoleDeps:
    return system.server.app[DEPS_KEY]


def wire_console(system: System) -> ConsoleDeps:
    """What bot/runtime.py and bot/wiring.py do for the console (see the report)."""
    deps = console_deps(system)
    services = system.services
    deps.seal_secrets = services.secrets.seal
    deps.forget_account = services.accounts.forget
    deps.media = services.media

    async def check(account_id: int) -> ConnectionResult:
        loaded = await services.accounts.by_id(account_id)
        if loaded is None:
            return ConnectionResult(False, "no adapter")
        result = await loaded.adapter.check_connection()
        return ConnectionResult(result.ok, result.message)

    deps.check_connection = check
    services.pipeline.after_commit.append(pipeline_hook(deps.live, services.db))
    return deps


@dataclass
class Org:
    teams: dict[str, int] = field(default_factory=dict)
    staff: dict[str, int] = field(default_factory=dict)
    conversations: dict[str, int] = field(default_factory=dict)  # by assignee username
    customers: dict[str, int] = field(default_factory=dict)


ROLES = {
    "admin": (Role.ADMIN, None),
    "manager_a": (Role.MANAGER, "A"),
    "sales_a": (Role.SALES, "A"),
    "sales_a2": (Role.SALES, "A"),
    "sales_b": (Role.SALES, "B"),
    "marketer": (Role.MARKETER, None),
}


async def seed_org(system: System, messages: dict[str, list[str]] | None = None) -> Org:
    """Teams A and B, one user per role, and a conversation for each salesperson
    (plus an unassigned one) with the given customer messages."""
    org = Org()
    db = system.services.db
    async with db.transaction() as s:
        for name in ("A", "B"):
            team = Team(name=f"team-{name}")
            s.add(team)
            await s.flush()
            org.teams[name] = team.id
    for username, (role, team) in ROLES.items():
        org.staff[username] = await system.add_staff(
            username,
            role,
            PASSWORD,
            display_name=username.upper(),
            team_id=org.teams[team] if team else None,
        )
    messages = messages or {}
    owners = ("sales_a", "sales_a2", "sales_b", "unassigned")
    async with db.transaction() as s:
        account = await s.get(ChannelAccount, system.wecom_account_id)
        assert account is not None
        for i, owner in enumerate(owners):
            # wecom.app talks to members of the corp: make each customer one
            system.sim.add_member(system.wecom.corp_id, f"cust_{owner}")
            texts = messages.get(owner, [f"你好，我是{owner}的客户"])
            items = [
                InboundMessage(
                    provider_key=f"seed-{owner}-{j}",
                    external_id=f"cust_{owner}",
                    kind=MessageKind.TEXT,
                    text=text,
                    occurred_at=datetime(2026, 11, 20, 9, i, j, tzinfo=UTC),
                    sender_name=f"客户{owner}",
                )
                for j, text in enumerate(texts)
            ]
            await record_inbound(s, account, items)
            conv = (
                await s.scalars(
                    select(Conversation)
                    .join(Customer, Customer.id == Conversation.customer_id)
                    .where(Customer.display_name == f"客户{owner}")
                )
            ).one()
            if owner != "unassigned":
                conv.assignee_id = org.staff[owner]
                customer = await s.get(Customer, conv.customer_id)
                assert customer is not None
                customer.owner_id = org.staff[owner]
            org.conversations[owner] = conv.id
            org.customers[owner] = conv.customer_id
        await index_backlog(s)
    return org


async def staff_reply(system: System, org: Org, owner: str, text: str, key: str) -> None:
    async with system.services.db.transaction() as s:
        conv = await s.get(Conversation, org.conversations[owner])
        assert conv is not None
        await queue_outbound(
            s,
            conv,
            text=text,
            purpose=Purpose.REPLY,
            sender_type=SenderType.STAFF,
            sender_staff_id=org.staff[owner],
            idempotency_key=key,
        )
        await index_backlog(s)


async def csrf_of(http: aiohttp.ClientSession, url: str) -> str:
    page = await (await http.get(url)).text()
    found = re.search(r'name="_csrf" value="([^"]+)"', page)
    assert found, page[:500]
    return found.group(1)


async def api_token(system: System, username: str) -> str:
    from conversations.api_tokens import issue_token

    async with system.services.db.transaction() as s:
        staff_id = await s.scalar(select(StaffUser.id).where(StaffUser.username == username))
        assert staff_id is not None
        _, plain = await issue_token(s, staff_id, "test")
    return plain


def bearer(token: str) -> dict[str, Any]:
    return {"Authorization": f"Bearer {token}"}
