"""Threading: Message-ID / In-Reply-To / References decide the conversation a mail joins,
and who our reply goes to (Reply-To honoured, a colleague's customer kept in Cc)."""

from __future__ import annotations

import email
import uuid
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bot.accounts import AccountDirectory
from bot.outbox import OutboxDispatcher
from bot.secrets import SecretBox
from channels.base import RawRequest
from channels.email.adapter import EmailAdapter
from channels.email.mime_parse import parse_email
from channels.email.thread_headers import answer_address, thread_refs
from channels.registry import default_registry
from conversations.actions import queue_outbound, record_inbound
from conversations.db import Database
from conversations.ingest import ConversationCache, record_messages
from conversations.models import ChannelAccount, Conversation, Message
from conversations.types import (
    AccountRef,
    InboundMessage,
    MessageKind,
    Outbound,
    Purpose,
    SendOutcome,
)

from .conftest import channel_context, create_account, deliver, read_mailbox
from .test_mailbox_e2e import customer_mail, drain, messages

OWN = "sales@example.test"


def mail_bytes(sender: str, message_id: str, **headers: str) -> bytes:
    msg = customer_mail(sender, OWN, "报价单", "正文", Message_ID=message_id, **headers)
    return bytes(msg)


def offline_adapter(tmp_path: Path) -> EmailAdapter:
    """An adapter for parsing only (no server is contacted)."""
    config = {"address": OWN, "imap_host": "imap.example.test", "smtp_host": "smtp.example.test"}
    return EmailAdapter(
        AccountRef(1, "email", OWN, config, {"password": "x"}), channel_context(tmp_path)
    )


def parsed_message(adapter: EmailAdapter, raw: bytes) -> InboundMessage:
    [item] = adapter.parse(RawRequest("POST", "", "", {}, {}, raw))
    assert isinstance(item, InboundMessage)
    return item


async def account_and_adapter(db: Database, tmp_path: Path) -> tuple[ChannelAccount, EmailAdapter]:
    config = {
        "address": OWN,
        "imap_host": "imap.example.test",
        "smtp_host": "smtp.example.test",
    }
    async with db.transaction() as session:
        row = ChannelAccount(
            kind="email", name=OWN, config=config, secrets={}, callback_token=uuid.uuid4().hex
        )
        session.add(row)
    ref = AccountRef(row.id, "email", OWN, config, {"password": "x"})
    return row, EmailAdapter(ref, channel_context(tmp_path))


async def store_first_question(
    db: Database, account: ChannelAccount, adapter: EmailAdapter
) -> Message:
    """The buyer's first mail, <q1@customer.test>, that later mails refer to."""
    raw = mail_bytes("buyer@customer.test", "<q1@customer.test>")
    return await store(db, account, parsed_message(adapter, raw))


async def store(db: Database, account: ChannelAccount, item: InboundMessage) -> Message:
    async with db.transaction() as session:
        result = await record_inbound(session, account, [item])
        [msg_id] = result.message_ids
        found = await session.get(Message, msg_id)
        assert found is not None
        return found


async def conversation_count(db: Database, account_id: int) -> int:
    async with db.reading() as session:
        return int(
            await session.scalar(select(func.count()).where(Conversation.account_id == account_id))
            or 0
        )


async def our_reply(db: Database, conversation_id: int, message_id: str) -> None:
    """What the outbox dispatcher leaves after a successful send: our Message-ID stored."""
    async with db.transaction() as session:
        conv = await session.get(Conversation, conversation_id)
        assert conv is not None
        msg = await queue_outbound(
            session, conv, text="您好", purpose=Purpose.REPLY, idempotency_key=message_id
        )
        assert msg is not None
        msg.provider_message_id = message_id
        msg.status = "sent"


# ---------------------------------------------------------------- which ids a mail answers


def test_thread_refs_put_in_reply_to_first_then_references_newest_first() -> None:
    mail = parse_email(
        mail_bytes(
            "a@customer.test",
            "<self@customer.test>",
            In_Reply_To="<parent@x.test>",
            References="<root@x.test> <middle@x.test> <parent@x.test>",
        )
    )

    assert thread_refs(mail) == ("<parent@x.test>", "<middle@x.test>", "<root@x.test>")


def test_thread_refs_skip_the_mails_own_id_and_malformed_ids() -> None:
    mail = parse_email(
        mail_bytes(
            "a@customer.test", "<self@customer.test>", References="<self@customer.test> junk"
        )
    )

    assert thread_refs(mail) == ()


def test_reply_to_is_the_answer_address() -> None:
    mail = parse_email(
        mail_bytes("noreply@shop.test", "<f@shop.test>", Reply_To="买家 <buyer@customer.test>")
    )

    assert answer_address(mail, frozenset({OWN})) == "buyer@customer.test"


def test_reply_to_pointing_at_our_own_mailbox_is_ignored() -> None:
    mail = parse_email(mail_bytes("buyer@customer.test", "<f@customer.test>", Reply_To=OWN))

    assert answer_address(mail, frozenset({OWN})) == "buyer@customer.test"


# ---------------------------------------------------------------- the conversation index


async def test_colleague_reply_to_our_mail_joins_the_customers_conversation(
    db: Database, tmp_path: Path
) -> None:
    account, adapter = await account_and_adapter(db, tmp_path)
    first = await store_first_question(db, account, adapter)
    await our_reply(db, first.conversation_id, "<crmbot.r1@example.test>")

    colleague = parsed_message(
        adapter,
        mail_bytes(
            "boss@customer.test",
            "<q2@customer.test>",
            In_Reply_To="<crmbot.r1@example.test>",
            References="<q1@customer.test> <crmbot.r1@example.test>",
        ),
    )
    joined = await store(db, account, colleague)

    assert joined.conversation_id == first.conversation_id
    assert await conversation_count(db, account.id) == 1
    assert joined.payload["from"]["address"] == "boss@customer.test"


async def test_forwarded_thread_is_found_through_an_older_reference(
    db: Database, tmp_path: Path
) -> None:
    account, adapter = await account_and_adapter(db, tmp_path)
    first = await store_first_question(db, account, adapter)
    forwarded = parsed_message(
        adapter,
        mail_bytes(
            "purchasing@other.test",
            "<fw1@other.test>",
            In_Reply_To="<never-seen@other.test>",
            References="<q1@customer.test> <never-seen@other.test>",
        ),
    )

    joined = await store(db, account, forwarded)

    assert joined.conversation_id == first.conversation_id


async def test_mail_referencing_nothing_we_know_starts_the_senders_own_conversation(
    db: Database, tmp_path: Path
) -> None:
    account, adapter = await account_and_adapter(db, tmp_path)
    first = await store_first_question(db, account, adapter)
    stranger = parsed_message(
        adapter,
        mail_bytes("other@else.test", "<o1@else.test>", In_Reply_To="<unknown@else.test>"),
    )

    second = await store(db, account, stranger)

    assert second.conversation_id != first.conversation_id
    assert await conversation_count(db, account.id) == 2


async def test_references_of_another_mailbox_do_not_cross_accounts(
    db: Database, tmp_path: Path
) -> None:
    account, adapter = await account_and_adapter(db, tmp_path)
    other, other_adapter = await account_and_adapter(db, tmp_path)
    await store_first_question(db, account, adapter)
    reply = parsed_message(
        other_adapter,
        mail_bytes("boss@customer.test", "<q2@customer.test>", In_Reply_To="<q1@customer.test>"),
    )

    stored = await store(db, other, reply)

    async with db.reading() as session:
        conv = await session.get(Conversation, stored.conversation_id)
    assert conv is not None and conv.account_id == other.id


async def test_batch_ingest_path_follows_the_thread_too(db: Database, tmp_path: Path) -> None:
    account, adapter = await account_and_adapter(db, tmp_path)
    first = await store_first_question(db, account, adapter)
    colleague = parsed_message(
        adapter,
        mail_bytes("boss@customer.test", "<q2@customer.test>", In_Reply_To="<q1@customer.test>"),
    )

    async with db.transaction() as session:
        [msg_id] = await record_messages(session, [(account, colleague)], ConversationCache())
        assert msg_id is not None
        stored = await session.get(Message, msg_id)

    assert stored is not None and stored.conversation_id == first.conversation_id


# ---------------------------------------------------------------- end to end, real servers


def reply_out(account: Any, recipient: str, inbound: Message, key: str) -> Outbound:
    return Outbound(
        key=key,
        account=account,
        recipient=recipient,
        kind=MessageKind.TEXT,
        text="您好，已收到。",
        purpose=Purpose.REPLY,
        context={
            "reply_to": {
                "provider_message_id": inbound.provider_message_id,
                "thread": inbound.payload["thread"],
            }
        },
    )


async def reply_through_the_outbox(
    db: Database, dispatcher: OutboxDispatcher, conversation_id: int, key: str
) -> Message:
    """A salesperson's reply as the console queues it, sent by the lead's dispatcher."""
    async with db.transaction() as session:
        conv = await session.get(Conversation, conversation_id)
        assert conv is not None
        queued = await queue_outbound(
            session, conv, text="您好，已收到。", purpose=Purpose.REPLY, idempotency_key=key
        )
        assert queued is not None
        message_id = queued.id
    assert await dispatcher.run_once() == 1
    async with db.reading() as session:
        sent = await session.get(Message, message_id)
    assert sent is not None and sent.status == "sent", sent and sent.status_reason
    return sent


async def test_colleague_answering_our_reply_lands_in_the_thread_and_our_answer_keeps_both(
    db: Database, new_mailbox: Any, tmp_path: Path
) -> None:
    box = new_mailbox()
    made = await create_account(db, box)
    box_secrets = SecretBox("test-key")
    async with db.transaction() as session:
        row = await session.get(ChannelAccount, made.id)
        assert row is not None
        row.secrets = box_secrets.seal(made.secrets)  # at rest, as the console stores them
    directory = AccountDirectory(db, default_registry(), channel_context(tmp_path), box_secrets)
    loaded = await directory.by_id(made.id)
    assert loaded is not None and isinstance(loaded.adapter, EmailAdapter)
    adapter = loaded.adapter
    dispatcher = OutboxDispatcher(db, directory)
    customer, colleague = new_mailbox(), new_mailbox()
    try:
        ask = customer_mail(
            customer.address, box.address, "询价", "多少钱？", Message_ID="<t1@c.test>"
        )
        await deliver(customer.address, box.address, ask, box.smtp_port)
        await drain(db, made, adapter)
        [inbound] = await messages(db, made.id)
        ours = await reply_through_the_outbox(db, dispatcher, inbound.conversation_id, "reply-1")
        [our_mail] = await read_mailbox(customer)
        got = email.message_from_bytes(our_mail, policy=default_policy)
        assert got["Message-ID"] == ours.provider_message_id
        assert got["In-Reply-To"] == "<t1@c.test>"

        # the customer's colleague answers our mail from their own address
        answer = EmailMessage()
        answer["From"] = colleague.address
        answer["To"] = box.address
        answer["Subject"] = "Re: 询价"
        answer["Message-ID"] = "<t2@c.test>"
        answer["In-Reply-To"] = str(got["Message-ID"])
        answer["References"] = f"<t1@c.test> {got['Message-ID']}"
        answer.set_content("我是采购经理，请发合同。")
        await deliver(colleague.address, box.address, answer, box.smtp_port)
        await drain(db, made, adapter)

        stored = [m for m in await messages(db, made.id) if m.direction == "in"]
        assert [m.conversation_id for m in stored] == [inbound.conversation_id] * 2
        await reply_through_the_outbox(db, dispatcher, inbound.conversation_id, "reply-2")
        [to_colleague] = await read_mailbox(colleague)
        second = email.message_from_bytes(to_colleague, policy=default_policy)
        assert second["To"] == colleague.address
        assert second["Cc"] == customer.address
        assert second["In-Reply-To"] == "<t2@c.test>"
        assert len(await read_mailbox(customer)) == 2
    finally:
        await adapter.aclose()


async def test_reply_goes_to_the_reply_to_address_over_real_smtp(
    db: Database, new_mailbox: Any, adapters: list[EmailAdapter], tmp_path: Path
) -> None:
    box = new_mailbox()
    account = await create_account(db, box)
    adapter = EmailAdapter(account, channel_context(tmp_path))
    adapters.append(adapter)
    form, buyer = new_mailbox(), new_mailbox()
    ask = customer_mail(
        form.address,
        box.address,
        "网站留言",
        "请联系我",
        Message_ID="<w1@c.test>",
        Reply_To=buyer.address,
    )
    await deliver(form.address, box.address, ask, box.smtp_port)
    await drain(db, account, adapter)
    [inbound] = await messages(db, account.id)

    result = await adapter.send(reply_out(account, form.address, inbound, "reply-w1"))

    assert result.outcome == SendOutcome.SENT
    [got] = await read_mailbox(buyer)
    assert email.message_from_bytes(got, policy=default_policy)["To"] == buyer.address
    assert await read_mailbox(form) == []


def test_web_form_mail_from_noreply_is_filed_under_the_reply_to_visitor(tmp_path: Path) -> None:
    adapter = offline_adapter(tmp_path)
    raw = mail_bytes(
        "官网表单 <noreply@shop.test>", "<form-1@shop.test>", Reply_To="王先生 <wang@buyer.test>"
    )

    item = parsed_message(adapter, raw)

    assert item.external_id == "wang@buyer.test"
    assert item.contact_hints == {"email": "wang@buyer.test"}
    assert item.sender_name is None
    assert item.automated  # RFC 3834 caution stays: the bot does not auto-answer forms


def test_a_persons_reply_to_does_not_change_who_wrote_the_mail(tmp_path: Path) -> None:
    adapter = offline_adapter(tmp_path)
    raw = mail_bytes("李经理 <li@buyer.test>", "<p-1@buyer.test>", Reply_To="desk@buyer.test")

    item = parsed_message(adapter, raw)

    assert item.external_id == "li@buyer.test"
    assert item.payload["thread"]["answer_to"] == "desk@buyer.test"
