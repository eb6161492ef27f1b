"""The pipeline handler on a real store: replies, safety, hand-off, budgets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from autoreply import service
from autoreply.engine import Decision, Engine, Facts
from autoreply.faq_transfer import FaqRow
from autoreply.models import KeywordRule
from conversations import actions
from conversations.db import Database
from conversations.handlers import BATCH_CONTEXTS
from conversations.models import Conversation, Customer, Message, StaffUser
from conversations.notifications import StaffNotification
from conversations.types import (
    ChannelRules,
    InboundMessage,
    MessageKind,
    MessageStatus,
    SenderType,
)

from .conftest import KF_RULES, Bench, make_bench

OTHER_RULE = {"keywords": ["营业执照"], "replies": ["请看官网"]}  # configures the bot


async def add_rule(db: Database, **data: Any) -> int:
    async with db.transaction() as s:
        row = await service.create_rule(s, {"match": "contains", **data}, actor_id=None)
    return row.id


async def assign_salesperson(db: Database) -> int:
    async with db.transaction() as s:
        staff = StaffUser(username="li", display_name="李销售", password_hash="x")
        s.add(staff)
        await s.flush()
        await s.execute(update(Customer).values(owner_id=staff.id))
    return staff.id


async def test_matching_rule_queues_reply_keyed_by_message(bench: Bench) -> None:
    await add_rule(bench.db, keywords=["价格"], replies=["您好 {customer_name}，价格见官网"])
    ctx = await bench.say("价格多少")
    outbox = await bench.outbox()
    assert [o.idempotency_key for o in outbox] == [f"autoreply:{ctx.message.id}"]
    assert outbox[0].payload["text"] == "您好 王小明，价格见官网"
    assert ctx.claimed_by == "autoreply"


async def test_rule_hit_is_counted(bench: Bench) -> None:
    rule_id = await add_rule(bench.db, keywords=["价格"], replies=["x"])
    await bench.say("价格")
    await bench.say("价格呢", who="other")
    async with bench.db.reading() as s:
        row = await s.get(KeywordRule, rule_id)
        assert row is not None and row.hits == 2 and row.last_hit_at is not None


async def test_round_robin_cycles_replies(bench: Bench) -> None:
    await add_rule(bench.db, keywords=["价格"], replies=["A", "B"], choice="round_robin")
    for who in ("c1", "c2", "c3"):
        await bench.say("价格", who=who)
    assert await bench.texts() == ["A", "B", "A"]


async def test_email_gets_html_content_of_the_reply(db: Database) -> None:
    b = await make_bench(db, kind="email")
    reply = {
        "text": "价格见附件",
        "channels": {"email": {"kind": "email", "payload": {"html": "<p>{customer_name}</p>"}}},
    }
    await add_rule(db, keywords=["价格"], replies=[reply])
    await b.say("价格", who="a@example.com")
    (item,) = await b.outbox()
    assert item.payload["kind"] == "email" and item.payload["html"] == "<p>王小明</p>"


async def test_bot_without_rules_or_faq_stays_silent(bench: Bench) -> None:
    await bench.say("你们周末营业吗")
    assert await bench.outbox() == []
    assert (await bench.conversation()).mode == "bot"


async def test_automated_message_is_never_answered(bench: Bench) -> None:
    await add_rule(bench.db, keywords=["价格"], replies=["x"])
    await bench.say("价格", automated=True)
    assert await bench.outbox() == []


async def test_claimed_message_is_not_answered(bench: Bench) -> None:
    await add_rule(bench.db, keywords=["退订"], replies=["x"])
    await bench.say("退订", claimed_by="optout")
    assert await bench.outbox() == []


async def test_read_only_channel_is_never_answered(db: Database) -> None:
    b = await make_bench(
        db, kind="wecom.archive", rules=ChannelRules(auto_reply=False, read_only=True)
    )
    await add_rule(db, keywords=["价格"], replies=["x"])
    await b.say("价格")
    assert await b.outbox() == []


async def test_same_message_twice_is_answered_once(bench: Bench) -> None:
    rule_id = await add_rule(bench.db, keywords=["价格"], replies=["x"])
    ctx = await bench.say("价格")
    async with bench.db.transaction() as s:
        ctx.session = s
        ctx.message = await s.get(Message, ctx.message.id)  # type: ignore[assignment]
        ctx.conversation = await s.get(Conversation, ctx.conversation.id)  # type: ignore[assignment]
        ctx.claimed_by = None
        await bench.handler(ctx)
    assert len(await bench.outbox()) == 1
    async with bench.db.reading() as s:
        row = await s.get(KeywordRule, rule_id)
        assert row is not None and row.hits == 1


async def test_loop_guard_stops_after_n_replies_a_minute(db: Database) -> None:
    b = await make_bench(db, max_replies_per_minute=2)
    await add_rule(db, keywords=["价格"], replies=["x"])
    for i in range(4):
        await b.say(f"价格{i}")
    assert len(await b.outbox()) == 2


async def test_handoff_keyword_switches_to_human_and_notifies_salesperson(bench: Bench) -> None:
    await add_rule(bench.db, **OTHER_RULE)
    await bench.say("好的")  # the customer exists from here on
    staff_id = await assign_salesperson(bench.db)
    ctx = await bench.say("转人工")
    conv = await bench.conversation()
    assert conv.mode == "human"
    assert await bench.texts() == [bench.handler.settings.handoff_text]
    async with bench.db.reading() as s:
        note = (await s.execute(select(StaffNotification))).scalar_one()
    assert (
        note.staff_id == staff_id
        and note.kind == "handoff"
        and note.key == f"handoff:{ctx.message.id}"
    )


async def test_low_faq_confidence_hands_off(bench: Bench) -> None:
    await add_rule(bench.db, **OTHER_RULE)
    await bench.say("在吗")  # first contact
    await bench.say("你们支持比特币付款吗")
    assert (await bench.conversation()).mode == "human"


async def test_bot_stays_quiet_while_human_handles(bench: Bench) -> None:
    await add_rule(bench.db, keywords=["价格"], replies=["x"])
    await bench.say("人工")
    before = len(await bench.outbox())
    await bench.say("价格")
    assert len(await bench.outbox()) == before


async def test_bot_resumes_after_human_idle_time(bench: Bench) -> None:
    await add_rule(bench.db, keywords=["价格"], replies=["价格见官网"])
    await bench.say("人工")
    later = datetime.now(UTC) + bench.handler.settings.human_idle + timedelta(minutes=1)
    await bench.say("价格", now=later)
    assert (await bench.conversation()).mode == "bot"
    assert (await bench.texts())[-1] == "价格见官网"


async def test_repeated_question_after_an_answer_hands_off(bench: Bench) -> None:
    await add_rule(bench.db, keywords=["价格"], replies=["价格见官网"])
    await bench.say("价格是多少")
    await bench.say("价格是多少")
    assert (await bench.conversation()).mode == "human"


async def test_welcome_on_first_contact_only(db: Database) -> None:
    b = await make_bench(db, welcome_text="欢迎咨询{account_name}")
    await b.say("你好")
    await b.say("你好")
    texts = await b.texts()
    assert texts[0] == "欢迎咨询官方客服"
    assert texts.count("欢迎咨询官方客服") == 1


async def test_handoff_outside_business_hours_sends_away_notice(bench: Bench) -> None:
    await add_rule(bench.db, **OTHER_RULE)
    async with bench.db.transaction() as s:
        await service.save_account_settings(
            s,
            bench.account.id,
            {
                "timezone": "Asia/Shanghai",
                "weekly_hours": {"0": [["09:00", "18:00"]]},
                "away_text": "下班了",
            },
            actor_id=None,
        )
    sunday_night = datetime(2026, 11, 22, 14, 0, tzinfo=UTC)
    await bench.say("转人工", now=sunday_night)
    assert await bench.texts() == ["下班了"]


async def test_faq_entry_answers_above_threshold(bench: Bench) -> None:
    async with bench.db.transaction() as s:
        await service.save_faq(
            s,
            FaqRow(
                slug="refund",
                question="怎么申请退款",
                answer="在订单页点申请退款",
                alternatives=("退款流程",),
            ),
            actor_id=None,
        )
    await bench.say("你好")
    await bench.say("请问怎么退款")
    assert (await bench.texts())[-1] == "在订单页点申请退款"


DELAYED = datetime.now(UTC) - timedelta(minutes=45)


async def _kf_history(db: Database, bench: Bench, sent: int) -> None:
    """The customer wrote an hour ago and `sent` messages went out 30 minutes ago.

    Each customer message reopens kf's budget, so the budget bites when the message
    being answered is older than what was sent since (a delayed sync_msg page).
    """
    ctx = await bench.say("好的", at=datetime.now(UTC) - timedelta(hours=1))
    async with db.transaction() as s:
        for i in range(sent):
            s.add(
                Message(
                    conversation_id=ctx.conversation.id,
                    account_id=bench.account.id,
                    direction="out",
                    kind="text",
                    text=f"salesperson {i}",
                    sender_type=SenderType.STAFF.value,
                    status=MessageStatus.SENT.value,
                    created_at=datetime.now(UTC) - timedelta(minutes=30),
                )
            )


async def test_kf_last_allowed_message_is_kept_for_handoff_notice(db: Database) -> None:
    b = await make_bench(db, rules=KF_RULES)
    await add_rule(db, keywords=["发货"], replies=["今天发货"])
    await _kf_history(db, b, sent=4)
    before = len(await b.outbox())
    await b.say("什么时候发货", at=DELAYED)  # 4 sent since → 1 left: the notice, not the answer
    new = (await b.texts())[before:]
    assert new == [b.handler.settings.budget_text]
    assert (await b.conversation()).mode == "human"


async def test_kf_sixth_message_within_48h_hands_off_silently(db: Database) -> None:
    b = await make_bench(db, rules=KF_RULES)
    await add_rule(db, keywords=["发货"], replies=["今天发货"])
    await _kf_history(db, b, sent=5)
    before = len(await b.outbox())
    await b.say("什么时候发货", at=DELAYED)  # 5 sent since it → a 6th is not allowed
    assert len(await b.outbox()) == before
    assert (await b.conversation()).mode == "human"


async def test_kf_reply_within_budget_is_sent(db: Database) -> None:
    b = await make_bench(db, rules=KF_RULES)
    await add_rule(db, keywords=["发货"], replies=["今天发货"])
    await b.say("什么时候发货")
    assert await b.texts() == ["今天发货"]


async def test_tag_scoped_rule_uses_injected_lookup(db: Database) -> None:
    b = await make_bench(db)

    async def tags(session: object, customer_id: int) -> frozenset[int]:
        return frozenset({42})

    b.handler.tag_lookup = tags
    await add_rule(db, keywords=["价格"], replies=["VIP价"], tag_ids=[42], priority=1)
    await add_rule(db, keywords=["价格"], replies=["普通价"])
    await b.say("价格")
    assert await b.texts() == ["VIP价"]


async def test_acknowledgement_with_spent_kf_budget_does_not_hand_off(db: Database) -> None:
    b = await make_bench(db, rules=KF_RULES)
    await _kf_history(db, b, sent=5)
    await b.say("好的", at=DELAYED)
    assert (await b.conversation()).mode == "bot"


async def test_human_mode_outside_hours_sends_away_notice_once_a_day(bench: Bench) -> None:
    await add_rule(bench.db, **OTHER_RULE)
    async with bench.db.transaction() as s:
        await service.save_account_settings(
            s,
            bench.account.id,
            {"weekly_hours": {"0": [["09:00", "18:00"]]}, "away_text": "下班了"},
            actor_id=None,
        )
    monday_10 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    await bench.say("转人工", now=monday_10)
    monday_20 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    for minute in range(3):
        await bench.say(f"有人吗{minute}", now=monday_20 + timedelta(minutes=minute))
    assert (await bench.texts()).count("下班了") == 1


async def test_warm_up_builds_the_engine_before_the_first_message(bench: Bench) -> None:
    await add_rule(bench.db, keywords=["价格"], replies=["见官网"])
    async with bench.db.reading() as s:
        await bench.handler.warm_up(s)
    assert bench.handler.cache.rebuilds == 1
    await bench.say("价格")
    assert bench.handler.cache.rebuilds == 1  # the first message answered from the warm engine
    assert await bench.texts() == ["见官网"]


async def test_a_pipeline_batch_is_decided_at_once_with_the_same_answers(
    bench: Bench, monkeypatch: pytest.MonkeyPatch
) -> None:
    await add_rule(bench.db, keywords=["价格"], replies=["价格见官网"])
    await add_rule(bench.db, keywords=["地址"], replies=["地址见官网"])
    batches: list[list[str]] = []
    decide_many = Engine.decide_many

    def spy(engine: Engine, texts: list[str], facts: list[Facts]) -> list[Decision]:
        batches.append(list(texts))
        return decide_many(engine, texts, facts)

    monkeypatch.setattr(Engine, "decide_many", spy)
    texts = ["价格多少", "你们地址在哪", "好的", "价格呢"]
    items = [
        InboundMessage(
            provider_key=f"b{i}",
            external_id=f"wm_{i}",
            kind=MessageKind.TEXT,
            text=text,
            occurred_at=datetime.now(UTC),
            sender_name="王小明",
        )
        for i, text in enumerate(texts)
    ]
    async with bench.db.transaction() as s:
        ids = (await actions.record_inbound(s, bench.account, items)).message_ids
    async with bench.db.transaction() as s:
        memo: dict[str, Any] = {}
        now = datetime.now(UTC)
        batch = [await bench.context(s, message_id, now=now, batch=memo) for message_id in ids]
        memo[BATCH_CONTEXTS] = batch
        for ctx in batch:
            await bench.handler(ctx)
    assert batches == [texts]  # the first message decided for the whole batch
    assert await bench.texts() == ["价格见官网", "地址见官网", "价格见官网"]
