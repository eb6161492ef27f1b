"""Sandbox mode: built-in provider simulators when no credentials are configured.

A WeCom simulator runs in-process on a loopback port; a sandbox `wecom.app` account
points at it (its credentials are kept in the account row so restarts keep working),
and the console's customer simulator posts encrypted, signed callbacks through it.
"""

from __future__ import annotations

import logging
import secrets
import socket
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from aiohttp import web
from sqlalchemy import select

from autoreply.models import KeywordRule
from autoreply.store import RULES, bump_versions
from channels.sms.aliyun.simulator import AliyunSimulator
from channels.sms.aliyun.simulator import simulated_account as aliyun_account
from channels.sms.simulation import GatewaySimulator
from channels.sms.tencent.simulator import TencentSimulator
from channels.sms.tencent.simulator import simulated_account as tencent_account
from channels.sms.twilio.simulator import TwilioSimulator
from channels.sms.twilio.simulator import simulated_account as twilio_account
from channels.wecom.simulator import (
    SimApp,
    WeComSimulator,
    post_callback,
    sign_callback,
    text_message_xml,
)
from channels.wecom.simulator.scenarios import kf_customer_writes
from conversations.models import ChannelAccount
from conversations.types import AccountRef

from .runtime import Services

log = logging.getLogger(__name__)

SANDBOX_RULES = [
    ("价格", "contains", "您好！我们的标准版 ¥199/月，专业版 ¥499/月，详细报价单稍后发给您。"),
    ("你好", "contains", "您好，我是智能助手，请问有什么可以帮您？回复「价格」查看报价。"),
    ("hello", "contains", "Hello! I am the assistant. Reply 'price' for our prices."),
    ("price", "contains", "Standard ¥199/month, Pro ¥499/month."),
]


class _PushesReplies(Protocol):
    async def push_reply(self, phone: str, text: str) -> tuple[int, str]: ...


def _sms_simulators() -> list[tuple[str, str, GatewaySimulator, Callable[[Any], AccountRef]]]:
    """(kind, account name, simulator, AccountRef factory) for every SMS gateway."""
    return [
        ("sms.aliyun", "阿里云短信（沙箱）", AliyunSimulator(), aliyun_account),
        ("sms.tencent", "腾讯云短信（沙箱）", TencentSimulator(), tencent_account),
        ("sms.twilio", "Twilio SMS (sandbox)", TwilioSimulator(), twilio_account),
    ]


class WeComSandbox:
    """Every provider simulator of sandbox mode (WeCom and the three SMS gateways)."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.sim = WeComSimulator()
        self.sms = _sms_simulators()
        self._sms_accounts: dict[int, GatewaySimulator] = {}
        self._kf_accounts: dict[int, tuple[str, SimApp, str, str]] = {}
        self._runner: web.AppRunner | None = None
        self.base_url = ""
        self._accounts: dict[int, tuple[str, SimApp, str]] = {}  # id → (name, app, callback token)

    async def start(self) -> None:
        self._runner = web.AppRunner(self.sim.app(), access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))  # loopback only: the simulator is never reachable from outside
        port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        self.base_url = f"http://127.0.0.1:{port}"
        self.services.accounts.ctx.api_base_overrides = {
            **self.services.accounts.ctx.api_base_overrides,
            "wecom": self.base_url,
        }
        await self._ensure_account()
        for kind, name, gateway, factory in self.sms:
            await gateway.start()
            await self._ensure_sms_account(kind, name, gateway, factory)
        log.info("sandbox: WeCom simulator on %s, SMS simulators started", self.base_url)

    async def stop(self) -> None:
        for _kind, _name, gateway, _factory in self.sms:
            await gateway.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _ensure_sms_account(
        self, kind: str, name: str, gateway: GatewaySimulator, factory: Callable[[Any], AccountRef]
    ) -> None:
        """One sandbox account per gateway; its API base follows the simulator's port."""
        ref = factory(gateway)
        async with self.services.db.transaction() as s:
            row = await s.scalar(
                select(ChannelAccount)
                .where(ChannelAccount.kind == kind)
                .order_by(ChannelAccount.id)
                .limit(1)
            )
            if row is not None and not row.config.get("sandbox"):
                return  # a real account of this kind exists: no simulator for it
            if row is None:
                row = ChannelAccount(
                    kind=kind,
                    name=name,
                    callback_token=secrets.token_urlsafe(24),
                    config={},
                    secrets={},
                )
                s.add(row)
            row.config = {**ref.config, "sandbox": True}
            row.secrets = self.services.secrets.seal(dict(ref.secrets))
            await s.flush()
            account_id, token = row.id, row.callback_token
        gateway.callback_url = f"{self.services.settings.public_url}/callbacks/{kind}/{token}"
        self.services.accounts.forget(account_id)
        self._sms_accounts[account_id] = gateway

    async def _ensure_account(self) -> None:
        db = self.services.db
        async with db.transaction() as s:
            rows = (
                await s.scalars(select(ChannelAccount).where(ChannelAccount.kind == "wecom.app"))
            ).all()
            sandbox_rows = [r for r in rows if r.config.get("sandbox")]
            if not rows:
                alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                row = ChannelAccount(
                    kind="wecom.app",
                    name="沙箱企业微信应用 (sandbox)",
                    config={"corp_id": "wwsandbox0001", "agent_id": 1000002, "sandbox": True},
                    secrets=self.services.secrets.seal(
                        {
                            "secret": secrets.token_urlsafe(32),
                            "token": "".join(secrets.choice(alphabet) for _ in range(24)),
                            "encoding_aes_key": "".join(
                                secrets.choice(alphabet) for _ in range(43)
                            ),
                        }
                    ),
                    callback_token=secrets.token_urlsafe(24),
                )
                s.add(row)
                await s.flush()
                sandbox_rows = [row]
            if not (await s.scalars(select(KeywordRule.id).limit(1))).first():
                for priority, (keyword, match, reply) in enumerate(SANDBOX_RULES):
                    s.add(
                        KeywordRule(
                            name=keyword,
                            keywords=[keyword],
                            match=match,
                            replies=[reply],
                            priority=priority,
                        )
                    )
                await bump_versions(s, [RULES])  # running engines rebuild with these
        for row in sandbox_rows:
            plain = self.services.secrets.open(row.secrets)
            app = SimApp(
                corp_id=str(row.config["corp_id"]),
                agent_id=int(row.config["agent_id"]),
                secret=plain["secret"],
                token=plain["token"],
                encoding_aes_key=plain["encoding_aes_key"],
            )
            self.sim.add_app(app)
            for member in ("zhangsan", "lisi", "wangwu"):
                self.sim.add_member(app.corp_id, member)
            self._accounts[row.id] = (row.name, app, row.callback_token)
        await self._ensure_kf_account()

    async def _ensure_kf_account(self) -> None:
        """A sandbox 微信客服 account: the path where the bot may answer customers."""
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
        async with self.services.db.transaction() as s:
            rows = (
                await s.scalars(select(ChannelAccount).where(ChannelAccount.kind == "wecom.kf"))
            ).all()
            if rows and not any(r.config.get("sandbox") for r in rows):
                return  # a real kf account exists: no simulator for it
            row = next((r for r in rows if r.config.get("sandbox")), None)
            if row is None:
                row = ChannelAccount(
                    kind="wecom.kf",
                    name="沙箱微信客服 (sandbox)",
                    config={
                        "corp_id": "wwsandbox0001",
                        "open_kfid": "wkSandboxKf0001",
                        "sandbox": True,
                    },
                    secrets=self.services.secrets.seal(
                        {
                            "secret": secrets.token_urlsafe(32),
                            "token": "".join(secrets.choice(alphabet) for _ in range(24)),
                            "encoding_aes_key": "".join(
                                secrets.choice(alphabet) for _ in range(43)
                            ),
                        }
                    ),
                    callback_token=secrets.token_urlsafe(24),
                )
                s.add(row)
                await s.flush()
        plain = self.services.secrets.open(row.secrets)
        app = self.sim.add_app(
            SimApp(
                corp_id=str(row.config["corp_id"]),
                agent_id=0,
                secret=plain["secret"],
                token=plain["token"],
                encoding_aes_key=plain["encoding_aes_key"],
            )
        )
        open_kfid = str(row.config["open_kfid"])
        self.sim.kf.add_account(app.corp_id, open_kfid)
        self._kf_accounts[row.id] = (row.name, app, row.callback_token, open_kfid)

    # ---- admin_web.deps.CustomerSimulator

    def accounts(self) -> Sequence[tuple[int, str]]:
        names = {kind: name for kind, name, _g, _f in self.sms}
        sms = [(i, names.get(self._kind_of(g), "SMS")) for i, g in self._sms_accounts.items()]
        kf = [(i, name) for i, (name, _app, _tok, _kfid) in self._kf_accounts.items()]
        return kf + [(i, name) for i, (name, _app, _tok) in self._accounts.items()] + sms

    def _kind_of(self, gateway: GatewaySimulator) -> str:
        return next(kind for kind, _n, g, _f in self.sms if g is gateway)

    async def send_as_customer(self, account_id: int, customer: str, text: str) -> int:
        if account_id in self._sms_accounts:
            # on SMS the customer is a phone number (上行短信 pushed by the gateway)
            phone = customer if any(c.isdigit() for c in customer) else "13800138000"
            gateway: _PushesReplies = self._sms_accounts[account_id]  # type: ignore[assignment]  # all three do
            status, _ = await gateway.push_reply(phone, text)
            return int(status)
        if account_id in self._kf_accounts:
            # a WeChat user writes to the kf account: sync_msg holds it, a callback wakes us
            _name, kf_app, kf_token, open_kfid = self._kf_accounts[account_id]
            url = f"{self.services.settings.public_url}/callbacks/wecom.kf/{kf_token}"
            return await kf_customer_writes(
                self.services.http, self.sim, kf_app, url, open_kfid, customer, text
            )
        name, app, token = self._accounts[account_id]
        self.sim.add_member(app.corp_id, customer)
        plaintext = text_message_xml(app, customer, text, msg_id=secrets.randbits(63))
        url = f"{self.services.settings.public_url}/callbacks/wecom.app/{token}"
        status, _ = await post_callback(self.services.http, url, sign_callback(app, plaintext))
        return status

    def delivered(self, limit: int = 50) -> Sequence[Mapping[str, Any]]:
        out: list[tuple[float, Mapping[str, Any]]] = [
            (float(i), {"to": m.touser, "text": m.content}) for i, m in enumerate(self.sim.sent)
        ]
        for _kind, _name, gateway, _f in self.sms:
            out.extend((m.sent_at, {"to": m.phone, "text": m.text}) for m in gateway.sent)
        out.extend(
            (
                float(len(out)),
                {"to": m.get("touser", ""), "text": (m.get("text") or {}).get("content", "")},
            )
            for m in self.sim.kf.sent
        )
        return [entry for _t, entry in out[-limit:]][::-1]
