"""Auto-tag rules: keywords, jieba tokens, regex, channels, events and profiles."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import select

from conversations.db import Database, utcnow
from conversations.handlers import EventContext, MessageContext
from conversations.models import ChannelEvent, Conversation, Customer, Message
from conversations.types import ChannelRules
from tagging.autotag import apply_profile_rules, auto_tag, auto_tag_event
from tagging.models import CustomerProfile, TagRule
from tagging.rules import RuleError, create_rule, match_text, tokens_of, validate_rule
from tagging.tags import TagRef, Why, ensure_tag, tag_history, tags_of, untag_customer
from tests.tagging import factories as f


def test_keyword_rule_matches_any_listed_keyword() -> None:
    assert match_text("keyword", "报价,多少钱", "这个多少钱啊", None) == "多少钱"
    assert match_text("keyword", "报价,多少钱", "你好", None) is None


def test_token_rule_needs_the_whole_word() -> None:
    text = "请把报价单发我"
    assert match_text("keyword", "报价单", text, None) == "报价单"
    assert match_text("token", "报价", "我想要个报价", tokens_of("我想要个报价")) == "报价"


def test_regex_rule_reports_the_matched_text() -> None:
    assert match_text("regex", r"\d+\s*台", "我要 20 台", None) == "20 台"


def test_invalid_regex_is_refused_with_the_reason() -> None:
    with pytest.raises(RuleError, match="invalid regular expression"):
        validate_rule("regex", "(unclosed", {})


def test_profile_rule_must_be_a_valid_condition() -> None:
    with pytest.raises(RuleError, match="invalid profile condition"):
        validate_rule("profile", "region 广东", {})


Setup = Callable[..., Awaitable[MessageContext]]


async def _message_ctx(
    s: object, text: str, *, kind: str = "sms.aliyun", phone: str | None = None
) -> MessageContext:
    from sqlalchemy.ext.asyncio import AsyncSession

    assert isinstance(s, AsyncSession)
    acc = await f.account(s, kind)
    cust = await f.customer(s, "李四", phone=phone, first_channel=kind)
    ident = await f.identity(s, cust, acc, phone or "ext-1")
    conv = Conversation(customer_id=cust.id, account_id=acc.id, identity_id=ident.id)
    s.add(conv)
    await s.flush()
    msg = Message(
        conversation_id=conv.id,
        account_id=acc.id,
        direction="in",
        kind="text",
        text=text,
        provider_key=f"k-{text}",
        sender_type="customer",
        status="received",
    )
    s.add(msg)
    await s.flush()
    return MessageContext(
        session=s,
        account=acc,
        rules=ChannelRules(),
        conversation=conv,
        customer=cust,
        message=msg,
        now=utcnow(),
    )


async def test_auto_tag_records_the_message_that_caused_it(db: Database) -> None:
    async with db.transaction() as s:
        tag = await ensure_tag(s, TagRef.parse("意向/询价"))
        rule = await create_rule(
            s, name="问价", tag_id=tag.id, kind="keyword", pattern="报价,多少钱"
        )
        ctx = await _message_ctx(s, "这款多少钱？")
        await auto_tag(ctx)
        await auto_tag(ctx)  # the pipeline may run a message twice
        tags = await tags_of(s, ctx.customer.id)
        history = await tag_history(s, ctx.customer.id)
        hits = (await s.get(TagRule, rule.id, populate_existing=True)).hits  # type: ignore[union-attr]
    assert [(t.name, t.source, t.message_id) for t in tags] == [("询价", "rule", ctx.message.id)]
    assert len(history) == 1 and "多少钱" in history[0].reason
    assert hits == 1


async def test_rule_does_not_put_back_a_tag_a_person_removed(sqlite_db: Database) -> None:
    async with sqlite_db.transaction() as s:
        tag = await ensure_tag(s, TagRef.parse("意向/询价"))
        await create_rule(s, name="问价", tag_id=tag.id, kind="keyword", pattern="报价")
        ctx = await _message_ctx(s, "报价发我")
        await auto_tag(ctx)
        await untag_customer(s, ctx.customer.id, tag.id, Why("manual", reason="not a lead"))
        await auto_tag(ctx)
        assert await tags_of(s, ctx.customer.id) == []


async def test_channel_rule_tags_by_account_kind(sqlite_db: Database) -> None:
    async with sqlite_db.transaction() as s:
        tag = await ensure_tag(s, TagRef.parse("来源/短信"))
        await create_rule(
            s, name="短信来源", tag_id=tag.id, kind="channel", config={"first_channel": "sms"}
        )
        ctx = await _message_ctx(s, "你好")
        await auto_tag(ctx)
        assert [t.name for t in await tags_of(s, ctx.customer.id)] == ["短信"]


async def test_auto_tag_fills_region_from_phone_prefix(sqlite_db: Database) -> None:
    async with sqlite_db.transaction() as s:
        ctx = await _message_ctx(s, "你好", phone="+8613530012345")
        await auto_tag(ctx)
        profile = await s.get(CustomerProfile, ctx.customer.id)
    assert profile is not None and (profile.province, profile.city) == ("广东", "深圳")


async def test_profile_rule_tags_matching_customers_set_based(db: Database) -> None:
    async with db.transaction() as s:
        tag = await ensure_tag(s, TagRef.parse("区域/华南"))
        await create_rule(s, name="华南", tag_id=tag.id, kind="profile", pattern="region:广东")
        gd = await f.customer(s, "gd", province="广东")
        bj = await f.customer(s, "bj", province="北京")
        assert await apply_profile_rules(s, utcnow()) == 1
        assert await apply_profile_rules(s, utcnow()) == 0
        assert [t.name for t in await tags_of(s, gd.id)] == ["华南"]
        assert await tags_of(s, bj.id) == []


async def test_event_rule_tags_by_contact_way_state(sqlite_db: Database) -> None:
    async with sqlite_db.transaction() as s:
        tag = await ensure_tag(s, TagRef.parse("来源/展会活码"))
        await create_rule(
            s,
            name="展会",
            tag_id=tag.id,
            kind="event",
            config={"event_type": "add_external_contact", "payload": {"State": "expo"}},
        )
        acc = await f.account(s, "wecom.contact")
        cust = await f.customer(s)
        await f.identity(s, cust, acc, "wmEXT")
        event = ChannelEvent(
            account_id=acc.id,
            provider_key="e1",
            event_type="add_external_contact",
            external_id="wmEXT",
            payload={"State": "expo"},
        )
        s.add(event)
        await s.flush()
        await auto_tag_event(
            EventContext(session=s, account=acc, rules=ChannelRules(), event=event, now=utcnow())
        )
        assert [t.name for t in await tags_of(s, cust.id)] == ["展会活码"]
        assert (await s.scalars(select(Customer))).all()  # the customer still exists
