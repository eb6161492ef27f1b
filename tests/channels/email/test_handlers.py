"""Email event handlers put addresses on the shared do-not-contact list."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from channels.email.handlers import mark_bounced_addresses, unsubscribe_by_mail
from channels.email.inbound import mail_to_inbound
from conversations.actions import record_inbound
from conversations.consent import ConsentEvent, is_suppressed
from conversations.db import Database, utcnow
from conversations.handlers import EventContext
from conversations.models import ChannelAccount, ChannelEvent
from conversations.types import ChannelRules

from .conftest import fixture_bytes


async def run_event_handlers(db: Database, raw: bytes) -> None:
    async with db.transaction() as session:
        account = ChannelAccount(
            kind="email", name="sales", config={}, secrets={}, callback_token=uuid.uuid4().hex
        )
        session.add(account)
        await session.flush()
        items = mail_to_inbound(raw, own_addresses=frozenset({"sales@example.com"}), media=None)
        result = await record_inbound(session, account, items)
        for event_id in result.event_ids:
            event = await session.get(ChannelEvent, event_id)
            assert event is not None
            ctx = EventContext(session, account, ChannelRules(), event, utcnow())
            await mark_bounced_addresses(ctx)
            await unsubscribe_by_mail(ctx)


async def test_permanent_bounce_suppresses_the_address(db: Database) -> None:
    await run_event_handlers(db, fixture_bytes("dsn_postfix_user_unknown.eml"))

    async with db.reading() as session:
        assert await is_suppressed(session, channel="email", address="nobody@example.cn")
        [evidence] = list(await session.scalars(select(ConsentEvent)))
    assert (evidence.action, evidence.source) == ("bounce", "dsn")


async def test_mailto_unsubscribe_suppresses_the_sender(db: Database) -> None:
    raw = (
        b"From: Buyer@Customer.test\r\nTo: sales@example.com\r\n"
        b"Subject: unsubscribe tok.en\r\nMessage-ID: <u1@customer.test>\r\n\r\n"
    )

    await run_event_handlers(db, raw)

    async with db.reading() as session:
        assert await is_suppressed(session, channel="email", address="buyer@customer.test")


async def test_a_question_mentioning_unsubscribe_later_is_not_an_opt_out(db: Database) -> None:
    raw = (
        b"From: buyer@customer.test\r\nTo: sales@example.com\r\n"
        b"Subject: how do I unsubscribe my colleague?\r\nMessage-ID: <u2@customer.test>\r\n\r\n"
    )

    await run_event_handlers(db, raw)

    async with db.reading() as session:
        assert not await is_suppressed(session, channel="email", address="buyer@customer.test")
