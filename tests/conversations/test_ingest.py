"""Group-commit storing (conversations.ingest.record_messages) on both databases:
first contacts created set-based, known senders from one query or the cache."""

from __future__ import annotations

from sqlalchemy import func, select

from conversations import actions
from conversations.db import Database
from conversations.ingest import ConversationCache, record_messages
from conversations.models import ChannelAccount, Conversation, Customer, Identity, Message
from conversations.types import InboundMessage
from tests.conversations.test_actions import _account, _text


async def _store(
    db: Database, entries: list[tuple[ChannelAccount, InboundMessage]], cache: ConversationCache
) -> list[int | None]:
    async with db.transaction() as s:
        return await record_messages(s, entries, cache)


async def test_first_contacts_in_one_batch_get_a_customer_and_conversation_each(
    db: Database,
) -> None:
    acc = await _account(db)
    senders = [f"user{i}" for i in range(30)]
    entries = [(acc, _text(f"m{i}-{who}", who)) for i in range(2) for who in senders]
    ids = await _store(db, entries, ConversationCache())
    assert None not in ids and len(set(ids)) == 60
    async with db.reading() as s:
        rows = (
            await s.execute(
                select(Identity.external_id, Customer.display_name, Conversation.unread_count)
                .join(Customer, Customer.id == Identity.customer_id)
                .join(Conversation, Conversation.identity_id == Identity.id)
            )
        ).all()
        assert await s.scalar(select(func.count()).select_from(Customer)) == 30
    # each identity kept its own customer: the names line up with the senders
    assert sorted((who, name, unread) for who, name, unread in rows) == sorted(
        (who, who, 2) for who in senders
    )


async def test_a_sender_named_in_the_message_names_the_new_customer(db: Database) -> None:
    acc = await _account(db, kind="wecom.app")
    await _store(db, [(acc, _text("m1", "wm_1", sender_name="王小姐"))], ConversationCache())
    async with db.reading() as s:
        customer = (await s.execute(select(Customer))).scalar_one()
        identity = (await s.execute(select(Identity))).scalar_one()
    assert customer.display_name == "王小姐" and customer.first_channel == "wecom.app"
    assert identity.display_name == "王小姐" and identity.customer_id == customer.id


async def test_known_senders_are_found_without_the_cache(db: Database) -> None:
    acc = await _account(db)
    await _store(db, [(acc, _text("m1", "wm_1")), (acc, _text("m2", "wm_2"))], ConversationCache())
    # a fresh cache (another worker, a restart): the senders are found, not re-created
    await _store(db, [(acc, _text("m3", "wm_1")), (acc, _text("m4", "wm_2"))], ConversationCache())
    async with db.reading() as s:
        assert await s.scalar(select(func.count()).select_from(Customer)) == 2
        assert await s.scalar(select(func.count()).select_from(Conversation)) == 2
        unread = (await s.scalars(select(Conversation.unread_count))).all()
    assert sorted(unread) == [2, 2]


async def test_an_identity_without_a_conversation_gets_one(db: Database) -> None:
    acc = await _account(db)
    async with db.transaction() as s:
        identity = await actions.resolve_identity(s, acc, "wm_1")
    await _store(db, [(acc, _text("m1", "wm_1"))], ConversationCache())
    async with db.reading() as s:
        conv = (await s.execute(select(Conversation))).scalar_one()
        assert await s.scalar(select(func.count()).select_from(Customer)) == 1
    assert conv.identity_id == identity.id and conv.customer_id == identity.customer_id


async def test_a_first_contact_with_a_known_phone_joins_that_customer(db: Database) -> None:
    sms = await _account(db, kind="sms.aliyun", token="s")
    app = await _account(db, kind="wecom.app", token="w")
    phone = "+8613800138000"
    await _store(
        db, [(sms, _text("s1", phone, contact_hints={"phone": phone}))], ConversationCache()
    )
    await _store(
        db,
        [(app, _text("w1", "wm_1", contact_hints={"phone": phone})), (app, _text("w2", "wm_2"))],
        ConversationCache(),
    )
    async with db.reading() as s:
        owners = dict((await s.execute(select(Identity.external_id, Identity.customer_id))).all())
    assert owners["wm_1"] == owners[phone] != owners["wm_2"]


async def test_a_batch_across_two_accounts_keeps_them_apart(db: Database) -> None:
    a = await _account(db, token="a")
    b = await _account(db, token="b")
    ids = await _store(
        db, [(a, _text("m1", "same")), (b, _text("m1", "same"))], ConversationCache()
    )
    assert None not in ids
    async with db.reading() as s:
        convs = (await s.execute(select(Conversation.account_id, Conversation.identity_id))).all()
        messages = (await s.execute(select(Message.account_id, Message.conversation_id))).all()
    assert sorted(a for a, _ in convs) == sorted([a.id, b.id])
    assert len({c for _, c in messages}) == 2


async def test_cached_conversations_are_used_for_later_batches(db: Database) -> None:
    acc = await _account(db)
    cache = ConversationCache()
    await _store(db, [(acc, _text("m1", "wm_1"))], cache)
    assert cache.get((acc.id, "wm_1")) is not None
    await _store(db, [(acc, _text("m2", "wm_1"))], cache)
    async with db.reading() as s:
        conversations = set((await s.scalars(select(Message.conversation_id))).all())
    assert len(conversations) == 1
