"""A small world for broadcast tests: three channel accounts, customers, a clock."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.accounts import AccountDirectory
from bot.outbox import OutboxDispatcher
from bot.secrets import SecretBox
from broadcasts.control import Draft, create_broadcast, submit
from broadcasts.engine import BroadcastEngine
from broadcasts.models import Broadcast, BroadcastRecipient, BroadcastRun
from broadcasts.settings import BroadcastSettings
from conversations.db import Database
from conversations.models import ChannelAccount, Customer, Identity, StaffUser

from .fakes import FakeProvider, context, fake_registry

SECRET = "k" * 40


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: datetime(2026, 3, 2, 2, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


@dataclass
class World:
    db: Database
    clock: Clock
    sms: int
    email: int
    kf: int
    provider: FakeProvider = field(default_factory=FakeProvider)
    staff: int = 0
    settings: BroadcastSettings = field(
        default_factory=lambda: BroadcastSettings(
            secret_key=SECRET, public_url="https://crm.example.com", queue_horizon_seconds=10
        )
    )

    def engine(self, **kw: Any) -> BroadcastEngine:
        kw.setdefault("settle_every", 0)  # tests settle on every tick
        return BroadcastEngine(self.db, kw.pop("settings", self.settings), clock=self.clock, **kw)

    def dispatcher(self, **kw: Any) -> OutboxDispatcher:
        registry = fake_registry(self.provider, ["sms.tencent", "email", "wecom.kf"])
        accounts = AccountDirectory(self.db, registry, context(), SecretBox(SECRET))
        return OutboxDispatcher(self.db, accounts, **kw)

    async def customer(
        self,
        name: str,
        *,
        phone: str | None = None,
        email: str | None = None,
        kf: str | None = None,
        owner: int | None = None,
        profile: dict[str, Any] | None = None,
    ) -> int:
        async with self.db.transaction() as s:
            c = Customer(
                display_name=name, phone=phone, email=email, owner_id=owner, profile=profile or {}
            )
            s.add(c)
            await s.flush()
            if kf:
                s.add(
                    Identity(
                        customer_id=c.id,
                        channel_kind="wecom.kf",
                        account_id=self.kf,
                        external_id=kf,
                    )
                )
            return c.id

    async def broadcast(
        self,
        customer_ids: Sequence[int] | None = None,
        *,
        order: Sequence[int] | None = None,
        content: dict[str, Any] | None = None,
        schedule: dict[str, Any] | None = None,
        audience: dict[str, Any] | None = None,
        submit_now: bool = True,
        **kw: Any,
    ) -> int:
        draft = Draft(
            name="春季促销",
            audience=audience or {"kind": "customers", "customer_ids": list(customer_ids or [])},
            content=content
            or {
                "sms": {"text": "{customer_name}您好，春季新品上市"},
                "email": {"subject": "春季新品", "html": "<p>{customer_name}您好</p>"},
                "wecom": {"msgtype": "text", "text": "{customer_name}您好，春季新品上市"},
            },
            channel_order=list(order or [self.sms]),
            schedule=schedule or {"kind": "now"},
            **kw,
        )
        async with self.db.transaction() as s:
            b = await create_broadcast(s, draft, actor_id=self.staff or None)
            if submit_now:
                from broadcasts.audience import AudienceRegistry
                from broadcasts.policy import PolicyRegistry

                await submit(
                    s,
                    b,
                    actor_id=None,
                    policies=PolicyRegistry(),
                    audiences=AudienceRegistry(),
                    now=self.clock(),
                )
            return b.id

    async def run_of(self, broadcast_id: int) -> BroadcastRun | None:
        async with self.db.reading() as s:
            return await s.scalar(
                select(BroadcastRun)
                .where(BroadcastRun.broadcast_id == broadcast_id)
                .order_by(BroadcastRun.id.desc())
                .limit(1)
            )

    async def recipients(self, broadcast_id: int) -> list[BroadcastRecipient]:
        run = await self.run_of(broadcast_id)
        assert run is not None
        async with self.db.reading() as s:
            return list(
                await s.scalars(
                    select(BroadcastRecipient)
                    .where(BroadcastRecipient.run_id == run.id)
                    .order_by(BroadcastRecipient.id)
                )
            )

    async def get(self, broadcast_id: int) -> Broadcast:
        async with self.db.reading() as s:
            b = await s.get(Broadcast, broadcast_id)
            assert b is not None
            return b


@pytest.fixture
async def world(db: Database) -> World:
    async with db.transaction() as s:
        rows = [
            ChannelAccount(
                kind="sms.tencent",
                name="腾讯云短信",
                callback_token="t-sms",
                config={"sign_name": "测试商城"},
            ),
            ChannelAccount(
                kind="email",
                name="营销邮箱",
                callback_token="t-mail",
                config={"address": "news@example.com"},
            ),
            ChannelAccount(kind="wecom.kf", name="微信客服", callback_token="t-kf", config={}),
        ]
        s.add_all(rows)
        staff = StaffUser(
            username="marketer", display_name="小王", password_hash="x", role="marketer"
        )
        s.add(staff)
        await s.flush()
        ids = [r.id for r in rows]
        staff_id = staff.id
    w = World(db, Clock(), *ids)
    w.staff = staff_id
    return w
