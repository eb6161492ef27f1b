"""Small builders for tagging tests: customers with identities, profiles and tags."""

from __future__ import annotations

import itertools
from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from conversations.models import ChannelAccount, Customer, Identity
from tagging.models import CustomerHobby, CustomerProfile
from tagging.tags import TagRef, Why, ensure_tag, tag_customer

_tokens = itertools.count(1)


async def account(session: AsyncSession, kind: str = "sms.aliyun") -> ChannelAccount:
    acc = ChannelAccount(kind=kind, name=kind, callback_token=f"tok{next(_tokens)}")
    session.add(acc)
    await session.flush()
    return acc


async def customer(
    session: AsyncSession,
    name: str = "张三",
    *,
    phone: str | None = None,
    email: str | None = None,
    tags: tuple[str, ...] = (),
    province: str | None = None,
    city: str | None = None,
    gender: str | None = None,
    birth_date: date | None = None,
    intent: str | None = None,
    hobbies: tuple[str, ...] = (),
    last_contact_at: datetime | None = None,
    first_channel: str | None = None,
) -> Customer:
    row = Customer(
        display_name=name,
        phone=phone,
        email=email,
        last_contact_at=last_contact_at,
        first_channel=first_channel,
    )
    session.add(row)
    await session.flush()
    if any(v is not None for v in (province, city, gender, birth_date, intent)):
        session.add(
            CustomerProfile(
                customer_id=row.id,
                province=province,
                city=city,
                gender=gender,
                birth_date=birth_date,
                birthday_mmdd=birth_date.month * 100 + birth_date.day if birth_date else None,
                intent_level=intent,
            )
        )
    for hobby in hobbies:
        session.add(CustomerHobby(customer_id=row.id, hobby=hobby))
    for path in tags:
        tag = await ensure_tag(session, TagRef.parse(path))
        await tag_customer(session, row.id, tag.id, Why("manual"))
    await session.flush()
    return row


async def identity(
    session: AsyncSession, cust: Customer, acc: ChannelAccount, external_id: str
) -> Identity:
    ident = Identity(
        customer_id=cust.id, channel_kind=acc.kind, account_id=acc.id, external_id=external_id
    )
    session.add(ident)
    await session.flush()
    return ident
