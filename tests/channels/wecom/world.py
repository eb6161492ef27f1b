"""A running crmbot with WeCom accounts of every kind in one or more simulated corps."""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bot.pollers import run_poller
from channels.wecom.handlers import on_external_contact, queue_media_download
from channels.wecom.sensitive import sensitive_word_alert
from channels.wecom.simulator import SimApp, new_app
from conversations.models import ChannelAccount
from tests.system import System

FIXTURES = Path(__file__).parent / "fixtures"


@dataclass
class Account:
    id: int
    kind: str
    corp_id: str
    token: str  # callback path token
    app: SimApp  # the credential (own secret, callback Token, EncodingAESKey)
    open_kfid: str | None = None
    private_key: str | None = None


def fixture_xml(name: str, corp_id: str) -> bytes:
    """A documented callback plaintext, addressed to `corp_id`."""
    text = (FIXTURES / f"{name}.xml").read_text(encoding="utf-8")
    return re.sub(
        r"<ToUserName><!\[CDATA\[[^\]]*\]\]></ToUserName>",
        f"<ToUserName><![CDATA[{corp_id}]]></ToUserName>",
        text,
    ).encode()


def fixture_json(name: str) -> dict[str, Any]:
    item: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))[
        "item"
    ]
    return item


def use_wecom_handlers(system: System) -> None:
    """What bot/wiring.py registers for WeCom (see the report)."""
    handlers = system.services.pipeline.handlers
    if not any(name == "wecom.contacts" for name, _ in handlers.events):
        handlers.on_event("wecom.contacts", on_external_contact)
        handlers.on_message("wecom.media", queue_media_download)
        handlers.on_message("wecom.sensitive_words", sensitive_word_alert)


async def add_account(
    system: System,
    kind: str,
    corp_id: str,
    *,
    config: dict[str, Any] | None = None,
    agent_id: int = 1000002,
) -> Account:
    sim = system.sim
    app = sim.add_app(new_app(corp_id, agent_id))
    sim_base = str(system.sim_server.make_url("")).rstrip("/")
    cfg: dict[str, Any] = {"corp_id": corp_id, "api_base": sim_base, **(config or {})}
    plain = {"secret": app.secret, "token": app.token, "encoding_aes_key": app.encoding_aes_key}
    account = Account(0, kind, corp_id, secrets.token_urlsafe(16), app)
    if kind == "wecom.app":
        cfg["agent_id"] = agent_id
    if kind == "wecom.kf":
        account.open_kfid = "wk" + secrets.token_hex(12)
        cfg["open_kfid"] = account.open_kfid
        sim.kf.add_account(corp_id, account.open_kfid)
    if kind == "wecom.archive":
        cfg["finance_sdk"] = "simulator"
        account.private_key = sim.archive.enable(corp_id, app.secret)
        plain["private_keys"] = json.dumps({"1": account.private_key})
    async with system.services.db.transaction() as s:
        row = ChannelAccount(
            kind=kind,
            name=f"{kind} {corp_id}",
            config=cfg,
            secrets=system.services.secrets.seal(plain),
            callback_token=account.token,
        )
        s.add(row)
        await s.flush()
        account.id = row.id
    return account


async def set_private_keys(system: System, account: Account, keys: dict[str, str]) -> None:
    async with system.services.db.transaction() as s:
        row = (await s.scalars(select(ChannelAccount).where(ChannelAccount.id == account.id))).one()
        row.secrets = {
            **row.secrets,
            **system.services.secrets.seal({"private_keys": json.dumps(keys)}),
        }
    system.services.accounts.forget(account.id)


async def start_poller(system: System, account: Account, idle_wait: float = 30.0) -> None:
    loaded = await system.services.accounts.by_id(account.id)
    assert loaded is not None
    adapter: Any = loaded.adapter
    system.services.supervisor.spawn(
        f"poller:{account.id}",
        lambda stop: run_poller(
            system.services.db,
            account.id,
            adapter,
            system.services.pipeline.publish,
            stop,
            idle_wait=idle_wait,
        ),
    )
