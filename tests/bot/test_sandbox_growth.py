"""Sandbox mode's growth tools, through the console's sandbox routes: a new customer
scans a channel QR code made on the sandbox 客户联系 account, and a customer joins and
leaves a customer group, each pushed through the WeCom simulator to crmbot."""

from __future__ import annotations

import dataclasses
import re
import secrets
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from admin_web.code_views import CODES_CONSOLE_KEY
from bot.config import load_settings
from bot.runtime import Services, build_services, start_background, web_app
from bot.sandbox import WeComSandbox
from channels.wecom.codes.models import ContactCodeEvent
from channels.wecom.codes.rota import RotaMember
from channels.wecom.codes.service import CodeDraft
from channels.wecom.groups.models import CustomerGroup, GroupMember
from conversations.access import Role
from conversations.models import ChannelAccount, Customer
from conversations.staff import create_staff
from tests.system import eventually

PASSWORD = "s3cret-pass-123"


@dataclass
class Sandbox:
    services: Services
    server: TestServer
    sandbox: WeComSandbox

    @property
    def base(self) -> str:
        return str(self.server.make_url("")).rstrip("/")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def sandbox(sqlite_url: str, tmp_path: Path) -> AsyncIterator[Sandbox]:
    """crmbot as `make run` starts it in sandbox mode (jobs off: tests drive them)."""
    port = _free_port()
    settings = load_settings(
        env={
            "CRMBOT_DATABASE_URL": sqlite_url,
            "CRMBOT_DATA_DIR": str(tmp_path),
            "CRMBOT_SANDBOX": "true",
            "CRMBOT_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "CRMBOT_SECRET_KEY": secrets.token_urlsafe(40),
            "CRMBOT_LOG_LEVEL": "WARNING",
        }
    )
    settings = dataclasses.replace(
        settings, sections={**settings.sections, "jobs": {"enabled": False}}
    )
    services = await build_services(settings)
    sim = WeComSandbox(services)
    await sim.start()
    services.extras["simulator"] = sim
    server = TestServer(web_app(services), host="127.0.0.1", port=port)
    await server.start_server()
    await start_background(services)
    async with services.db.transaction() as s:
        await create_staff(s, username="boss", password=PASSWORD, role=Role.MANAGER)
    yield Sandbox(services, server, sim)
    await server.close()
    await sim.stop()
    await services.close()


async def _login(box: Sandbox) -> tuple[aiohttp.ClientSession, str]:
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    page = await (await http.get(f"{box.base}/login")).text()
    csrf = re.search(r'name="_csrf" value="([^"]+)"', page)
    assert csrf
    await http.post(
        f"{box.base}/login",
        data={"username": "boss", "password": PASSWORD, "_csrf": csrf.group(1)},
    )
    page = await (await http.get(f"{box.base}/sandbox")).text()
    csrf = re.search(r'name="_csrf" value="([^"]+)"', page)
    assert csrf
    return http, csrf.group(1)


async def _contact_account(box: Sandbox) -> int:
    async with box.services.db.reading() as s:
        account_id = await s.scalar(
            select(ChannelAccount.id).where(ChannelAccount.kind == "wecom.contact")
        )
    assert account_id is not None
    return account_id


async def test_sandbox_has_a_contact_account(sandbox: Sandbox) -> None:
    http, _csrf = await _login(sandbox)
    try:
        page = await (await http.get(f"{sandbox.base}/sandbox")).text()
    finally:
        await http.close()
    assert await _contact_account(sandbox)
    assert "/sandbox/scan" in page and "/sandbox/group" in page


async def test_new_customer_scans_a_channel_code(sandbox: Sandbox) -> None:
    account_id = await _contact_account(sandbox)
    codes = sandbox.server.app[CODES_CONSOLE_KEY]
    code = await codes.create(
        account_id,
        CodeDraft(
            name="门店海报",
            state="store-poster",
            code_type="single",
            rota_mode="round_robin",
            members=(RotaMember("lisi"), RotaMember("wangwu")),
        ),
    )
    http, csrf = await _login(sandbox)
    try:
        resp = await http.post(
            f"{sandbox.base}/sandbox/scan",
            data={"_csrf": csrf, "state": "store-poster", "name": "扫码的王女士"},
        )
        page = await resp.text()
    finally:
        await http.close()
    assert "扫码的王女士 → lisi" in page

    async def added() -> ContactCodeEvent | None:
        async with sandbox.services.db.reading() as s:
            return await s.scalar(
                select(ContactCodeEvent).where(ContactCodeEvent.code_id == code.id)
            )

    event = await eventually(added)
    async with sandbox.services.db.reading() as s:
        customer = await s.get(Customer, event.customer_id)
    assert customer is not None
    assert customer.profile["source"] == "渠道活码:门店海报"


async def test_scanning_an_unknown_state_is_refused(sandbox: Sandbox) -> None:
    http, csrf = await _login(sandbox)
    try:
        resp = await http.post(
            f"{sandbox.base}/sandbox/scan", data={"_csrf": csrf, "state": "nope", "name": "x"}
        )
        page = await resp.text()
    finally:
        await http.close()
    assert "problem=no_code" in str(resp.url)
    assert 'class="ok scanned"' not in page


async def _in_group(box: Sandbox, chat_id: str, member_id: str) -> bool | None:
    """Whether the member is in the group as crmbot stores it (None: never seen there)."""
    async with box.services.db.reading() as s:
        left = (
            await s.execute(
                select(GroupMember.left_at)
                .join(CustomerGroup, CustomerGroup.id == GroupMember.group_id)
                .where(CustomerGroup.chat_id == chat_id, GroupMember.member_id == member_id)
            )
        ).first()
    return None if left is None else left[0] is None


async def test_customer_joins_then_leaves_a_group(sandbox: Sandbox) -> None:
    http, csrf = await _login(sandbox)
    try:
        await http.post(
            f"{sandbox.base}/sandbox/group",
            data={
                "_csrf": csrf,
                "action": "join",
                "owner": "lisi",
                "group_name": "VIP客户群",
                "customer": "群里的陈先生",
            },
        )
        ((chat_id, name, owner, members),) = sandbox.sandbox.groups()
        assert (name, owner) == ("VIP客户群", "lisi") and "群里的陈先生" in members
        member_id = sandbox.sandbox.external_userid("群里的陈先生")
        assert member_id is not None
        await eventually(lambda: _in_group(sandbox, chat_id, member_id))
        await http.post(
            f"{sandbox.base}/sandbox/group",
            data={"_csrf": csrf, "action": "leave", "chat_id": chat_id, "customer": "群里的陈先生"},
        )
    finally:
        await http.close()

    async def left() -> bool:
        return await _in_group(sandbox, chat_id, member_id) is False

    await eventually(left)
