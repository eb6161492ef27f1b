"""Realistic data for the screenshots: several customers, channels and a fortnight."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from conversations.actions import record_inbound
from conversations.models import ChannelAccount, Conversation, Message
from conversations.search import index_backlog
from conversations.types import InboundMessage, MessageKind
from tests.admin_web.people import Org
from tests.system import System

CUSTOMERS = [
    ("李娜", "请问企业版多少钱？有没有年付优惠"),
    ("王强", "合同已经签好了，发票什么时候开"),
    ("陈静", "你们的系统支持短信群发吗"),
    ("刘洋", "想预约下周二的产品演示"),
    ("赵敏", "上次的报价单能再发我一份吗"),
    ("孙浩", "退订"),
]


async def seed_showcase(system: System, org: Org) -> None:
    rng = random.Random(7)
    now = datetime.now(UTC)
    async with system.services.db.transaction() as s:
        accounts = [await s.get(ChannelAccount, system.wecom_account_id)]
        for kind, name in (("sms.aliyun", "阿里云短信"), ("email", "销售邮箱")):
            acc = ChannelAccount(
                kind=kind,
                name=name,
                config={},
                secrets={},
                callback_token=f"showcase-{kind}",
                enabled=False,
            )
            s.add(acc)
            accounts.append(acc)
        await s.flush()
        for i, (name, text) in enumerate(CUSTOMERS):
            account = accounts[i % len(accounts)]
            assert account is not None
            history = []
            for day in range(14, 0, -1):
                if rng.random() < 0.5:
                    history.append(
                        InboundMessage(
                            provider_key=f"show-{i}-{day}",
                            external_id=f"show_{i}",
                            kind=MessageKind.TEXT,
                            text=f"第{day}天前的咨询",
                            occurred_at=now - timedelta(days=day, minutes=rng.randrange(600)),
                            sender_name=name,
                        )
                    )
            history.append(
                InboundMessage(
                    provider_key=f"show-{i}-now",
                    external_id=f"show_{i}",
                    kind=MessageKind.TEXT,
                    text=text,
                    occurred_at=now - timedelta(minutes=5 * i),
                    sender_name=name,
                )
            )
            await record_inbound(s, account, history)
        await s.flush()
        convs = (
            await s.scalars(
                select(Conversation)
                .where(Conversation.id.not_in(list(org.conversations.values())))
                .order_by(Conversation.id)
            )
        ).all()
        for n, conv in enumerate(convs):
            staff = org.staff["sales_a"] if n % 2 == 0 else org.staff["sales_a2"]
            conv.assignee_id = staff
            inbound = (
                await s.scalars(select(Message).where(Message.conversation_id == conv.id))
            ).all()
            for msg in inbound:
                if msg.occurred_at > now - timedelta(hours=1) and n % 3 == 1:
                    continue  # a few still waiting for an answer
                # replies as the dispatcher leaves them (no outbox: no adapters for these)
                s.add(
                    Message(
                        conversation_id=conv.id,
                        account_id=conv.account_id,
                        direction="out",
                        kind="text",
                        text="好的，马上为您处理",
                        sender_type="staff",
                        sender_staff_id=staff,
                        status="delivered",
                        occurred_at=msg.occurred_at + timedelta(minutes=rng.randrange(2, 45)),
                    )
                )
        await index_backlog(s)
