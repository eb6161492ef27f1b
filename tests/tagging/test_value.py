"""RFM scores, ABC classes and order import."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from conversations.db import Database
from conversations.models import Conversation, Message
from tagging.models import CustomerProfile
from tagging.orders import import_orders_csv, parse_amount_cents, record_order
from tagging.value import (
    ValueConfig,
    abc_classes,
    explain_customer,
    recompute_values,
    score_at_least,
    score_recency,
)
from tests.tagging import factories as f
from tests.tagging.test_segments import NOW, ids

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_recency_score_follows_the_thresholds() -> None:
    limits = (7, 30, 90, 180)
    assert [score_recency(d, limits) for d in (0, 7, 8, 90, 181, None)] == [5, 5, 4, 3, 1, 1]


def test_frequency_score_counts_up() -> None:
    assert [score_at_least(n, (2, 4, 8, 16)) for n in (0, 2, 5, 16)] == [1, 2, 3, 5]


def test_abc_classes_split_by_cumulative_revenue() -> None:
    classes = abc_classes({1: 700, 2: 200, 3: 60, 4: 40, 5: 0}, (0.7, 0.9))
    assert classes == {1: "A", 2: "B", 3: "C", 4: "C", 5: "C"}


def test_config_rejects_thresholds_out_of_order() -> None:
    with pytest.raises(ValueError, match="four increasing"):
        ValueConfig.from_settings({"recency_days": [30, 7, 90, 180]})


def test_explanation_names_the_thresholds() -> None:
    text = " ".join(ValueConfig.from_settings({"window_days": 180}).explain())
    assert "180 days" in text and "≤7 days ago → 5" in text


def test_amounts_are_parsed_to_fen() -> None:
    assert [parse_amount_cents(x) for x in ("1,299.5", "¥20", "0.07")] == [129950, 2000, 7]


async def test_recompute_scores_from_orders_and_messages(db: Database) -> None:
    async with db.transaction() as s:
        big = await f.customer(s, "big")
        chatty = await f.customer(s, "chatty")
        idle = await f.customer(s, "idle")
        await record_order(s, big.id, amount_cents=6_000_000, ordered_at=NOW - timedelta(days=3))
        acc = await f.account(s)
        ident = await f.identity(s, chatty, acc, "x")
        conv = Conversation(customer_id=chatty.id, account_id=acc.id, identity_id=ident.id)
        s.add(conv)
        await s.flush()
        for day in range(5):
            s.add(
                Message(
                    conversation_id=conv.id,
                    account_id=acc.id,
                    direction="in",
                    kind="text",
                    text="hi",
                    provider_key=f"m{day}",
                    sender_type="customer",
                    status="received",
                    occurred_at=NOW - timedelta(days=40 + day),
                )
            )
        await s.flush()
        report = await recompute_values(s, ValueConfig(), NOW)
        profiles = {c.id: await s.get(CustomerProfile, c.id) for c in (big, chatty, idle)}
        lines = explain_customer(profiles[big.id], ValueConfig())  # type: ignore[arg-type]
    scores = {cid: (p.rfm_r, p.rfm_f, p.rfm_m, p.abc_class) for cid, p in profiles.items() if p}
    assert scores == {
        big.id: (5, 1, 5, "A"),
        chatty.id: (3, 3, 1, "C"),
        idle.id: (1, 1, 1, "C"),
    }
    assert report.scored == 2 and report.classes["A"] == 1
    assert "¥60,000.00" in lines[2]
    assert await ids(db, "abc:A AND r>=4") == {big.id}


async def test_order_import_dry_run_reports_rows_and_writes_nothing(db: Database) -> None:
    csv_text = (
        "order_no,phone,amount,ordered_at\n"
        "A1,13800138000,1299.50,2026-11-01\n"
        "A2,13900000000,12x,2026-11-01\n"
        "A3,13800138000,10,not a date\n"
    )
    async with db.transaction() as s:
        await f.customer(s, "buyer", phone="+8613800138000")
        dry = await import_orders_csv(s, csv_text, tz=SHANGHAI, dry_run=True)
        real = await import_orders_csv(s, csv_text, tz=SHANGHAI, dry_run=False)
        again = await import_orders_csv(s, csv_text, tz=SHANGHAI, dry_run=False)
    assert [(e.row, e.field) for e in dry.errors] == [
        (2, "customer"),
        (2, "amount"),
        (3, "ordered_at"),
    ]
    assert (dry.imported, real.imported, again.imported, again.already_known) == (0, 1, 0, 1)
