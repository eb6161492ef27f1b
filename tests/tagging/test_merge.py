"""Duplicate suggestions and the audited merge that loses nothing."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from conversations.db import Database, utcnow
from conversations.models import AuditEntry, Conversation, Customer, Identity, Message
from tagging.merge import MergeError, find_duplicates, merge_customers
from tagging.models import (
    CustomerFieldValue,
    CustomerHobby,
    CustomerProfile,
    CustomerTag,
    CustomField,
    Order,
    TagEvent,
)
from tagging.tags import tags_of
from tests.tagging import factories as f
from tests.tagging.test_segments import ids

COUNTED = (
    Customer,
    Identity,
    Conversation,
    Message,
    CustomerTag,
    TagEvent,
    Order,
    CustomerProfile,
    CustomerHobby,
    CustomerFieldValue,
)


async def _counts(s: object) -> dict[str, int]:
    from sqlalchemy.ext.asyncio import AsyncSession

    assert isinstance(s, AsyncSession)
    return {
        model.__tablename__: int(await s.scalar(select(func.count()).select_from(model)) or 0)
        for model in COUNTED
    }


async def test_merge_moves_everything_and_loses_nothing(db: Database) -> None:
    async with db.transaction() as s:
        sms = await f.account(s, "sms.aliyun")
        mail = await f.account(s, "email")
        winner = await f.customer(
            s,
            "王五",
            phone="+8613800138000",
            tags=("意向/询价",),
            province="广东",
            hobbies=("钓鱼",),
        )
        loser = await f.customer(
            s,
            "王五(邮件)",
            email="wang@example.com",
            tags=("意向/询价", "行业/制造"),
            gender="male",
            birth_date=date(1990, 3, 4),
            hobbies=("钓鱼", "跑步"),
        )
        for cust, acc, ext in ((winner, sms, "+8613800138000"), (loser, mail, "wang@example.com")):
            ident = await f.identity(s, cust, acc, ext)
            conv = Conversation(customer_id=cust.id, account_id=acc.id, identity_id=ident.id)
            s.add(conv)
            await s.flush()
            s.add(
                Message(
                    conversation_id=conv.id,
                    account_id=acc.id,
                    direction="in",
                    kind="text",
                    text="hi",
                    provider_key=ext,
                    sender_type="customer",
                    status="received",
                )
            )
        field = CustomField(key="budget", label="预算", kind="number", choices=[])
        s.add(field)
        await s.flush()
        s.add(CustomerFieldValue(customer_id=loser.id, field_id=field.id, value_number=9000))
        s.add(Order(customer_id=loser.id, amount_cents=100, ordered_at=utcnow(), external_ref="o1"))
        await s.flush()
        before = await _counts(s)
        report = await merge_customers(s, winner.id, loser.id, actor_id=None, reason="same person")
        after = await _counts(s)
        winner_tags = sorted(t.name for t in await tags_of(s, winner.id))
        profile = await s.get(CustomerProfile, winner.id, populate_existing=True)
        hobbies = set(
            await s.scalars(
                select(CustomerHobby.hobby).where(CustomerHobby.customer_id == winner.id)
            )
        )
        owners = {
            model.__tablename__: set(await s.scalars(select(model.customer_id)))  # type: ignore[attr-defined]
            for model in (Identity, Conversation, TagEvent, Order, CustomerFieldValue)
        }
        audit_row = await s.scalar(select(AuditEntry).where(AuditEntry.action == "customer.merge"))
        await s.refresh(winner)
        await s.refresh(loser)
    assert after == before  # nothing deleted
    assert winner_tags == ["制造", "询价"]
    assert hobbies == {"钓鱼", "跑步"}
    assert profile is not None
    assert (profile.province, profile.gender, profile.birth_date) == (
        "广东",
        "male",
        date(1990, 3, 4),
    )
    assert all(found == {winner.id} for found in owners.values()), owners
    assert (loser.merged_into_id, winner.email) == (winner.id, "wang@example.com")
    assert audit_row is not None and audit_row.detail["loser_id"] == loser.id
    assert "identities.customer_id" in audit_row.detail["moved"]
    assert report.kept_on_loser["customer_tags.customer_id"]  # the shared tag stays on the loser
    assert await ids(db, 'tag:"行业/制造"') == {winner.id}


async def test_merging_into_itself_is_refused(sqlite_db: Database) -> None:
    async with sqlite_db.transaction() as s:
        c = await f.customer(s)
        with pytest.raises(MergeError):
            await merge_customers(s, c.id, c.id, actor_id=None)


async def test_duplicates_found_by_phone_in_any_format_and_by_similar_name(
    db: Database,
) -> None:
    async with db.transaction() as s:
        by_phone = await f.customer(s, "赵六", phone="+8613912345678")
        by_name = await f.customer(s, "欧阳娜娜")
        await f.customer(s, "欧阳修")
        found = await find_duplicates(s, name="欧阳娜娜 ", phone="139-1234-5678")
    assert [(d.customer_id, d.reasons) for d in found] == [
        (by_phone.id, ("phone",)),
        (by_name.id, ("name",)),
    ]
