"""Sandbox mode: built-in provider simulators when no credentials are configured.

A WeCom simulator runs in-process on a loopback port; a sandbox `wecom.app` account
points at it (its credentials are kept in the account row so restarts keep working),
and the console's customer simulator posts encrypted, signed callbacks through it.
A sandbox 客户联系 (`wecom.contact`) account carries the growth tools: channel QR codes
made in the console can be scanned by a new customer, and customers join and leave
customer groups, each pushed to crmbot as WeCom pushes it.
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
from channels.wecom.simulator.callbacks import push
from channels.wecom.simulator.groupchat import chat_event_xml
from channels.wecom.simulator.scenarios import customer_scans_code, kf_customer_writes
from conversations.models import ChannelAccount
from conversations.types import AccountRef

from .runtime import Services

log = logging.getLogger(__name__)

SANDBOX_MEMBERS = ("zhangsan", "lisi", "wangwu")
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

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
        self._contact: tuple[int, str, SimApp, str] | None = None  # id, name, app, token
        self._customers: dict[str, str] = {}  # sandbox customer name → external_userid

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
                alphabet = _ALPHABET
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
            for member in SANDBOX_MEMBERS:
                self.sim.add_member(app.corp_id, member)
            self._accounts[row.id] = (row.name, app, row.callback_token)
        await self._ensure_kf_account()
        await self._ensure_contact_account()

    async def _sandbox_row(
        self, kind: str, name: str, config: Mapping[str, Any]
    ) -> ChannelAccount | None:
        """The sandbox account of a WeCom kind, made on first start (credentials kept in
        the row so restarts keep working); None when a real account of that kind exists."""
        async with self.services.db.transaction() as s:
            rows = (
                await s.scalars(select(ChannelAccount).where(ChannelAccount.kind == kind))
            ).all()
            if rows and not any(r.config.get("sandbox") for r in rows):
                return None  # a real account exists: no simulator for it
            row = next((r for r in rows if r.config.get("sandbox")), None)
            if row is None:
                row = ChannelAccount(
                    kind=kind,
                    name=name,
                    config={**config, "sandbox": True},
                    secrets=self.services.secrets.seal(
                        {
                            "secret": secrets.token_urlsafe(32),
                            "token": "".join(secrets.choice(_ALPHABET) for _ in range(24)),
                            "encoding_aes_key": "".join(
                                secrets.choice(_ALPHABET) for _ in range(43)
                            ),
                        }
                    ),
                    callback_token=secrets.token_urlsafe(24),
                )
                s.add(row)
                await s.flush()
        return row

    def _sim_app(self, row: ChannelAccount) -> SimApp:
        plain = self.services.secrets.open(row.secrets)
        return self.sim.add_app(
            SimApp(
                corp_id=str(row.config["corp_id"]),
                agent_id=0,
                secret=plain["secret"],
                token=plain["token"],
                encoding_aes_key=plain["encoding_aes_key"],
            )
        )

    async def _ensure_kf_account(self) -> None:
        """A sandbox 微信客服 account: the path where the bot may answer customers."""
        row = await self._sandbox_row(
            "wecom.kf",
            "沙箱微信客服 (sandbox)",
            {"corp_id": "wwsandbox0001", "open_kfid": "wkSandboxKf0001"},
        )
        if row is None:
            return
        app = self._sim_app(row)
        open_kfid = str(row.config["open_kfid"])
        self.sim.kf.add_account(app.corp_id, open_kfid)
        self._kf_accounts[row.id] = (row.name, app, row.callback_token, open_kfid)

    async def _ensure_contact_account(self) -> None:
        """A sandbox 客户联系 account: channel QR codes and customer groups live there."""
        row = await self._sandbox_row(
            "wecom.contact", "沙箱客户联系 (sandbox)", {"corp_id": "wwsandbox0001"}
        )
        if row is None:
            return
        app = self._sim_app(row)
        for member in SANDBOX_MEMBERS:
            self.sim.add_member(app.corp_id, member)
        self._contact = (row.id, row.name, app, row.callback_token)

    # ---- admin_web.sandbox_views.GrowthSimulator (channel QR codes, customer groups)

    def growth_account(self) -> tuple[int, str] | None:
        """The sandbox 客户联系 account (id, name), when there is one."""
        return (self._contact[0], self._contact[1]) if self._contact else None

    def _contact_side(self) -> tuple[SimApp, str]:
        if self._contact is None:
            raise LookupError("no sandbox 客户联系 account")
        _id, _name, app, token = self._contact
        return app, f"{self.services.settings.public_url}/callbacks/wecom.contact/{token}"

    async def scan_code(self, state: str, name: str) -> tuple[str, int]:
        """A new customer `name` scans the code with `state`: (salesperson reached, HTTP
        status crmbot answered). LookupError when no code has that state."""
        app, url = self._contact_side()
        if not any(
            w.corp_id == app.corp_id and w.state == state
            for w in self.sim.contact_ways.ways.values()
        ):
            raise LookupError(state)
        ext, userid, status = await customer_scans_code(
            self.services.http, self.sim, app, url, state, name
        )
        self._customers[name] = ext
        return userid, status

    def groups(self) -> Sequence[tuple[str, str, str, list[str]]]:
        """Customer groups on the simulator: (chat_id, name, owner, member names)."""
        if self._contact is None:
            return []
        corp = self._contact[2].corp_id
        return [
            (g.chat_id, g.name, g.owner, [m.name or m.userid for m in g.members.values()])
            for g in self.sim.groups.groups[corp].values()
            if not g.dismissed
        ]

    def external_userid(self, name: str) -> str | None:
        """The external_userid the simulator gave sandbox customer `name`, if any."""
        return self._customers.get(name)

    def _external_id(self, corp_id: str, owner: str, name: str) -> str:
        """A sandbox customer's external_userid; a new name becomes a WeChat user who
        already has `owner` as a contact (scanned earlier, outside crmbot's view)."""
        if name not in self._customers:
            ext, _code = self.sim.contacts.add_customer(
                corp_id, owner, name, with_welcome_code=False
            )
            self._customers[name] = ext
        return self._customers[name]

    async def join_group(self, owner: str, group_name: str, customer: str) -> int:
        """`customer` scans the group QR code of `owner`'s group `group_name` (made when
        missing): change_external_chat create (if new), then update/add_member."""
        app, url = self._contact_side()
        if owner not in SANDBOX_MEMBERS:
            raise LookupError(owner)
        group = next(
            (
                g
                for g in self.sim.groups.groups[app.corp_id].values()
                if g.owner == owner and g.name == group_name and not g.dismissed
            ),
            None,
        )
        http = self.services.http
        if group is None:
            group = self.sim.groups.create_group(app.corp_id, owner, group_name)
            await push(http, url, app, chat_event_xml(app.corp_id, group.chat_id, "create"))
        ext = self._external_id(app.corp_id, owner, customer)
        self.sim.groups.join(app.corp_id, group.chat_id, [ext], scene=3)
        event = chat_event_xml(
            app.corp_id, group.chat_id, "update", "add_member", members=[ext], join_scene=3
        )
        return await push(http, url, app, event)

    async def leave_group(self, chat_id: str, customer: str) -> int:
        """`customer` leaves the group (update/del_member, quit_scene 0: left by themself)."""
        app, url = self._contact_side()
        ext = self._customers.get(customer)
        group = self.sim.groups.groups[app.corp_id].get(chat_id)
        if ext is None or group is None or ext not in group.members:
            raise LookupError(customer)
        self.sim.groups.leave(app.corp_id, chat_id, [ext])
        event = chat_event_xml(
            app.corp_id, chat_id, "update", "del_member", members=[ext], quit_scene=0
        )
        return await push(self.services.http, url, app, event)

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
