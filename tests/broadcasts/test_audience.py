"""Audience sources: uploaded lists, salespeople's customers; the [broadcasts] settings."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from broadcasts.audience import customers_of_salespeople, import_contacts, normalise_phone
from broadcasts.settings import BroadcastSettings
from conversations.db import Database
from conversations.models import Customer, StaffUser


async def test_uploaded_list_matches_existing_customers_and_creates_the_rest(
    sqlite_db: Database,
) -> None:
    async with sqlite_db.transaction() as s:
        known = Customer(display_name="张三", phone="+8613800000001")
        s.add(known)
        await s.flush()
        result = await import_contacts(
            s, "\ufeff手机号,姓名\n138 0000 0001,张三\n13900000002,李四\nnot-a-number,王五\n"
        )
        assert result.customer_ids[0] == known.id
        assert result.created == 1
        assert result.rejected == ["not-a-number,王五"]
        li = await s.scalar(select(Customer).where(Customer.phone == "+8613900000002"))
        assert li is not None and li.display_name == "李四"


async def test_customers_of_chosen_salespeople(sqlite_db: Database) -> None:
    async with sqlite_db.transaction() as s:
        a = StaffUser(username="a", display_name="A", password_hash="x")
        b = StaffUser(username="b", display_name="B", password_hash="x")
        s.add_all([a, b])
        await s.flush()
        s.add_all(
            [
                Customer(display_name="1", owner_id=a.id),
                Customer(display_name="2", owner_id=b.id),
                Customer(display_name="3"),
            ]
        )
        await s.flush()
        query = customers_of_salespeople([a.id]).select_ids()
        assert query is not None
        assert len((await s.scalars(query)).all()) == 1


def test_phone_numbers_are_normalised_to_e164() -> None:
    assert normalise_phone("13800000001") == "+8613800000001"
    assert normalise_phone("0085291234567") == "+85291234567"
    assert normalise_phone("abc") is None


def test_settings_section_is_validated() -> None:
    ok = BroadcastSettings.from_section(
        {"cap_max_per_customer": 3}, secret_key="k", public_url="http://x/", timezone="UTC"
    )
    assert (ok.cap_max_per_customer, ok.public_url, ok.timezone) == (3, "http://x", "UTC")
    with pytest.raises(ValueError, match="cap_period_days.*unknown setting"):
        BroadcastSettings.from_section(
            {"cap_period_days": -1, "colour": "red"}, secret_key="k", public_url="", timezone="UTC"
        )
