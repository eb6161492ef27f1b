"""A running crmbot with a 客户联系 account, the group handlers wired as bot/wiring.py
wires them, and the documented change_external_chat payloads."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from channels.wecom.api import WeComApi
from channels.wecom.groups.events import on_archived_group_message, on_group_chat_event
from tests.channels.wecom.world import Account, add_account, use_wecom_handlers
from tests.system import System

FIXTURES = Path(__file__).parent / "fixtures"
FIXTURE_CHAT = "wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA"  # the ChatId in every fixture
FIXTURE_CUSTOMER = "wmOgQhDgAAuXFJGwbve4g4iXknfOAAAA"  # the customer who joins and leaves


def chat_fixture(name: str, corp_id: str) -> bytes:
    """A documented change_external_chat plaintext addressed to `corp_id`."""
    text = (FIXTURES / f"change_external_chat_{name}.xml").read_text(encoding="utf-8")
    return re.sub(
        r"<ToUserName><!\[CDATA\[[^\]]*\]\]></ToUserName>",
        f"<ToUserName><![CDATA[{corp_id}]]></ToUserName>",
        text,
    ).encode()


def fixture_names() -> list[str]:
    return sorted(p.stem.removeprefix("change_external_chat_") for p in FIXTURES.glob("*.xml"))


def use_group_handlers(system: System) -> None:
    """What bot/wiring.py registers for customer groups (see the report)."""
    use_wecom_handlers(system)
    handlers = system.services.pipeline.handlers
    if not any(name == "wecom.groups" for name, _ in handlers.events):
        handlers.on_event("wecom.groups", on_group_chat_event)
        handlers.on_event("wecom.groups.archive", on_archived_group_message)


async def contact_account(system: System, corp_id: str, **config: Any) -> Account:
    use_group_handlers(system)
    return await add_account(system, "wecom.contact", corp_id, config=config or None)


async def api_of(system: System, account: Account) -> WeComApi:
    loaded = await system.services.accounts.by_id(account.id)
    assert loaded is not None
    api = loaded.adapter.api  # type: ignore[attr-defined]
    assert isinstance(api, WeComApi)
    return api
