"""End to end against real Dovecot + SMTP: customer mail in → conversation → reply with
threading headers → read back over IMAP; restarts, UIDVALIDITY changes, loops, bounces."""

from __future__ import annotations

import asyncio
import dataclasses
import email
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.pollers import load_cursors, run_poller, store_pull_page
from channels.email.adapter import EmailAdapter, cursor_name, parse_cursor
from channels.email.imap_source import encode_folder
from conversations.actions import RecordResult
from conversations.consent import is_suppressed
from conversations.db import Database
from conversations.models import ChannelEvent, Conversation, Message
from conversations.types import AccountRef, MessageKind, Outbound, Purpose, SendOutcome

from .conftest import Mailbox, append, channel_context, create_account, deliver, read_mailbox


def customer_mail(sender: str, to: str, subject: str, body: str, **headers: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return msg


async def drain(db: Database, account: AccountRef, adapter: EmailAdapter) -> RecordResult:
    """Pull pages and store each with its cursor until the mailbox is current."""
    total = RecordResult()
    while True:
        page = await adapter.pull(await load_cursors(db, account.id))
        result = await store_pull_page(db, account.id, page)
        total.message_ids += result.message_ids
        total.event_ids += result.event_ids
        total.duplicates += result.duplicates
        total.statuses += result.statuses
        if not page.has_more:
            return total


async def messages(db: Database, account_id: int) -> list[Message]:
    async with db.reading() as session:
        rows = await session.scalars(
            select(Message).where(Message.account_id == account_id).order_by(Message.id)
        )
        return list(rows)


async def setup(
    db: Database, new_mailbox: Any, adapters: list[EmailAdapter], tmp_path: Path, **config: Any
) -> tuple[Mailbox, AccountRef, EmailAdapter]:
    box = new_mailbox()
    account = await create_account(db, box, **config)
    adapter = EmailAdapter(account, channel_context(tmp_path))
    adapters.append(adapter)
    return box, account, adapter


async def test_customer_mail_is_stored_in_a_conversation(
    db: Database, new_mailbox: Any, adapters: list[EmailAdapter], tmp_path: Path
) -> None:
    box, account, adapter = await setup(db, new_mailbox, adapters, tmp_path)
    mail = customer_mail(
        "客户 <buyer@customer.test>",
        box.address,
        "询价：工业风扇",
        "请报价，200台。",
        Message_ID="<ask-1@customer.test>",
    )
    await deliver("buyer@customer.test", box.address, mail, box.smtp_port)

    result = await drain(db, account, adapter)

    assert len(result.message_ids) == 1
    [stored] = await messages(db, account.id)
    assert stored.text == "请报价，200台。"
    assert stored.kind == MessageKind.EMAIL.value
    assert stored.payload["subject"] == "询价：工业风扇"
    assert stored.provider_key == "<ask-1@customer.test>"
    async with db.reading() as session:
        conv = await session.get(Conversation, stored.conversation_id)
    assert conv is not None and conv.unread_count == 1


async def test_reply_carries_threading_headers_and_is_read_back_over_imap(
    db: Database, new_mailbox: Any, adapters: list[EmailAdapter], tmp_path: Path
) -> None:
    box, account, adapter = await setup(db, new_mailbox, adapters, tmp_path)
    customer = new_mailbox()
    first = customer_mail(
        customer.address,
        box.address,
        "报价单",
        "请问多少钱？",
        Message_ID="<q1@customer.test>",
        References="<older@customer.test>",
    )
    await deliver(customer.address, box.address, first, box.smtp_port)
    await drain(db, account, adapter)
    [inbound] = await messages(db, account.id)

    # what the lead's dispatcher hands to send(): the conversation's last inbound thread
    out = Outbound(
        key="outbox-reply-1",
        account=account,
        recipient=customer.address,
        kind=MessageKind.TEXT,
        text="您好，单价 350 元。",
        purpose=Purpose.REPLY,
        context={
            "reply_to": {
                "provider_message_id": inbound.provider_message_id,
                "thread": inbound.payload["thread"],
            }
        },
    )
    result = await adapter.send(out)

    assert result.outcome == SendOutcome.SENT
    [raw] = await read_mailbox(customer)
    got = email.message_from_bytes(raw, policy=default_policy)
    assert got["In-Reply-To"] == "<q1@customer.test>"
    assert got["References"].split() == ["<older@customer.test>", "<q1@customer.test>"]
    assert got["Subject"] == "Re: 报价单"
    assert got["Message-ID"] == result.provider_message_id
    assert got.get_body().get_content().strip() == "您好，单价 350 元。"
    assert got.get_body().get_content_charset() == "utf-8"


async def test_same_outbox_key_sent_twice_reaches_the_server_once(
    db: Database, new_mailbox: Any, adapters: list[EmailAdapter], tmp_path: Path, smtp_server: Any
) -> None:
    box, account, adapter = await setup(db, new_mailbox, adapters, tmp_path)
    customer = new_mailbox()
    out = Outbound(
        key="outbox-dup",
        account=account,
        recipient=customer.address,
        kind=MessageKind.TEXT,
        text="hello",
        purpose=Purpose.REPLY,
    )

    first, second = await asyncio.gather(adapter.send(out), adapter.send(out))

    assert first.provider_message_id == second.provider_message_id
    assert len(smtp_server.received_for(customer.address)) == 1


async def test_smtp_rejection_fails_the_send_with_the_server_reason(
    db: Database, new_mailbox: Any, adapters: list[EmailAdapter], tmp_path: Path, smtp_server: Any
) -> None:
    box, account, adapter = await setup(db, new_mailbox, adapters, tmp_path)
    out = Outbound(
        key="outbox-rejected",
        account=account,
        recipient="someone@customer.test",
        kind=MessageKind.TEXT,
        text="hello",
        purpose=Purpose.REPLY,
    )
    smtp_server.reject_with = "554 5.7.1 message refused as spam"
    try:
        result = await adapter.send(out)
    finally:
        smtp_server.reject_with = None

    assert result.outcome == SendOutcome.FAILED
    assert result.reason is not None and "spam" in result.reason


async def test_restart_mid_import_loses_and_duplicates_nothing(
    db: Database, new_mailbox: Any, adapters: list[EmailAdapter], tmp_path: Path
) -> None:
    box, account, adapter = await setup(db, new_mailbox, adapters, tmp_path, batch_size=2)
    for i in range(5):
        await deliver(
            "buyer@customer.test",
            box.address,
            customer_mail("buyer@customer.test", box.address, f"mail {i}", f"body {i}"),
            box.smtp_port,
        )
    # first page stored, then the process "dies" with a page pulled but not stored
    page = await adapter.pull(await load_cursors(db, account.id))
    await store_pull_page(db, account.id, page)
    await adapter.pull(await load_cursors(db, account.id))
    await adapter.aclose()

    restarted = EmailAdapter(account, channel_context(tmp_path))
    adapters.append(restarted)
    await drain(db, account, restarted)

    stored = await messages(db, account.id)
    assert sorted(m.text for m in stored) == [f"body {i}" for i in range(5)]
    cursor = parse_cursor((await load_cursors(db, account.id))[cursor_name("INBOX")])
    assert cursor is not None and cursor[1] == 5


async def test_uid_fetch_past_the_end_returns_nothing_new(
    db: Database, new_mailbox: Any, adapters: list[EmailAdapter], tmp_path: Path
) -> None:
    box, account, adapter = await setup(db, new_mailbox, adapters, tmp_path)
    await deliver(
        "buyer@customer.test",
        box.address,
        customer_mail("buyer@customer.test", box.address, "one", "only mail"),
        box.smtp_port,
    )
    await drain(db, account, adapter)

    # UID FETCH 2:* still returns UID 1 (RFC 3501): it must not come back as new
    page = await adapter.pull(await load_cursors(db, account.id))

    assert list(page.items) == []
    assert page.cursor is None


async def test_uidvalidity_change_resyncs_without_duplicates(
    db: Database,
    new_mailbox: Any,
    adapters: list[EmailAdapter],
    tmp_path: Path,
    dovecot_server: Any,
) -> None:
    box, account, adapter = await setup(db, new_mailbox, adapters, tmp_path)
    for i in range(2):
        await deliver(
            "buyer@customer.test",
            box.address,
            customer_mail("buyer@customer.test", box.address, f"s{i}", f"before {i}"),
            box.smtp_port,
        )
    await drain(db, account, adapter)
    await adapter.aclose()
    dovecot_server.set_uidvalidity(box.user, "INBOX", 4242)
    await deliver(
        "buyer@customer.test",
        box.address,
        customer_mail("buyer@customer.test", box.address, "s2", "after change"),
        box.smtp_port,
    )

    result = await drain(db, account, adapter)

    assert len(result.message_ids) == 1  # the new mail
    assert result.duplicates == 2  # the old ones, seen again under new UIDs
    cursor = parse_cursor((await load_cursors(db, account.id))[cursor_name("INBOX")])
    assert cursor is not None and cursor[0] == 4242


async def test_first_connect_backfills_only_the_last_days(
    db: Database, new_mailbox: Any, adapters: list[EmailAdapter], tmp_path: Path
) -> None:
    from datetime import UTC, datetime, timedelta

    box, account, adapter = await setup(db, new_mailbox, adapters, tmp_path, backfill_days=7)
    old = customer_mail("buyer@customer.test", box.address, "old", "from last year")
    await append(box, bytes(old), date=datetime.now(UTC) - timedelta(days=300))
    recent = customer_mail("buyer@customer.test", box.address, "recent", "from yesterday")
    await append(box, bytes(recent), date=datetime.now(UTC) - timedelta(days=1))

    await drain(db, account, adapter)

    assert [m.text for m in await messages(db, account.id)] == ["from yesterday"]


async def test_out_of_office_reply_to_our_auto_reply_does_not_loop(
    db: Database, new_mailbox: Any, adapters: list[EmailAdapter], tmp_path: Path
) -> None:
    box, account, adapter = await setup(db, new_mailbox, adapters, tmp_path)
    customer = new_mailbox()
    auto = Outbound(
        key="auto-1",
        account=account,
        recipient=customer.address,
        kind=MessageKind.TEXT,
        text="已收到您的邮件，我们会尽快回复。",
        purpose=Purpose.AUTO_REPLY,
    )
    assert (await adapter.send(auto)).outcome == SendOutcome.SENT
    [ours] = await read_mailbox(customer)
    assert email.message_from_bytes(ours)["Auto-Submitted"] == "auto-replied"

    # the customer's vacation responder answers anyway (a non-compliant one)
    vacation = customer_mail(
        customer.address,
        box.address,
        "自动回复: 已收到",
        "我正在休假。",
        Auto_Submitted="auto-replied",
    )
    await deliver(customer.address, box.address, vacation, box.smtp_port)
    await drain(db, account, adapter)

    [stored] = await messages(db, account.id)
    assert stored.automated is True
    assert stored.payload["automated_reason"].startswith("auto-submitted")


async def test_second_auto_reply_within_the_hour_is_dropped(
    db: Database, new_mailbox: Any, adapters: list[EmailAdapter], tmp_path: Path
) -> None:
    box, account, adapter = await setup(
        db, new_mailbox, adapters, tmp_path, auto_replies_per_hour=1
    )
    customer = new_mailbox()

    def auto(key: str) -> Outbound:
        return Outbound(
            key=key,
            account=account,
            recipient=customer.address,
            kind=MessageKind.TEXT,
            text="自动回复",
            purpose=Purpose.AUTO_REPLY,
        )

    assert (await adapter.send(auto("a1"))).outcome == SendOutcome.SENT
    second = await adapter.send(auto("a2"))

    assert second.outcome == SendOutcome.FAILED
    assert second.error_code == "email.auto_reply_rate_limited"
    assert len(await read_mailbox(customer)) == 1


def dsn_for(original: bytes, reporter: str, recipient: str) -> bytes:
    headers = original.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    return (
        b"From: MAILER-DAEMON@mx.customer.test\r\n"
        b"To: " + reporter.encode() + b"\r\n"
        b"Subject: Undelivered Mail Returned to Sender\r\n"
        b"Message-ID: <dsn.1@mx.customer.test>\r\n"
        b"Auto-Submitted: auto-replied\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        b"--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        b"--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        b"Reporting-MTA: dns; mx.customer.test\r\n\r\n"
        b"Final-Recipient: rfc822; " + recipient.encode() + b"\r\n"
        b"Action: failed\r\nStatus: 5.1.1\r\n"
        b"Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n\r\n"
        b"--B\r\nContent-Type: text/rfc822-headers\r\n\r\n" + headers + b"\r\n\r\n--B--\r\n"
    )


async def test_bounce_fails_the_original_message_with_the_reason(
    db: Database, new_mailbox: Any, adapters: list[EmailAdapter], tmp_path: Path
) -> None:
    from conversations.actions import queue_outbound

    box, account, adapter = await setup(db, new_mailbox, adapters, tmp_path)
    customer = new_mailbox()
    await deliver(
        customer.address,
        box.address,
        customer_mail(customer.address, box.address, "hi", "hello"),
        box.smtp_port,
    )
    await drain(db, account, adapter)
    [inbound] = await messages(db, account.id)
    async with db.transaction() as session:
        conv = await session.get(Conversation, inbound.conversation_id)
        assert conv is not None
        outbound = await queue_outbound(
            session, conv, text="reply", purpose=Purpose.REPLY, idempotency_key="bounce-me"
        )
        assert outbound is not None
        outbound_id = outbound.id
    out = Outbound(
        key="bounce-me",
        account=account,
        recipient=customer.address,
        kind=MessageKind.TEXT,
        text="reply",
        purpose=Purpose.REPLY,
    )
    sent = await adapter.send(out)
    async with db.transaction() as session:  # what the dispatcher records on success
        row = await session.get(Message, outbound_id)
        assert row is not None
        row.provider_message_id = sent.provider_message_id
        row.status = "sent"
    [ours] = await read_mailbox(customer)
    await deliver("", box.address, dsn_for(ours, box.address, customer.address), box.smtp_port)

    result = await drain(db, account, adapter)

    assert result.statuses == 1
    async with db.reading() as session:
        failed = await session.get(Message, outbound_id)
        assert failed is not None
        assert failed.status == "failed"
        assert failed.status_reason is not None and "User unknown" in failed.status_reason
        [event] = list(await session.scalars(select(ChannelEvent)))
    assert event.event_type == "email.bounce"
    assert event.payload["permanent"] == [customer.address]


async def test_large_attachment_is_refused_with_a_clear_status(
    db: Database, new_mailbox: Any, adapters: list[EmailAdapter], tmp_path: Path
) -> None:
    box = new_mailbox()
    account = await create_account(db, box)
    adapter = EmailAdapter(account, channel_context(tmp_path, media_limit=256 * 1024))
    adapters.append(adapter)
    mail = customer_mail("buyer@customer.test", box.address, "附件", "见附件")
    mail.add_attachment(
        b"%PDF-1.4\n" + b"0" * (600 * 1024),
        maintype="application",
        subtype="pdf",
        filename="图纸.pdf",
    )
    mail.add_attachment(
        b"\x89PNG\r\n\x1a\n" + b"1" * 1000, maintype="image", subtype="png", filename="logo.png"
    )
    await deliver("buyer@customer.test", box.address, mail, box.smtp_port)

    await drain(db, account, adapter)

    [stored] = await messages(db, account.id)
    big, small = stored.payload["attachments"]
    assert big["filename"] == "图纸.pdf" and big["status"] == "rejected"
    assert "limit" in big["reason"]
    assert small["status"] == "stored" and small["mime"] == "image/png"


async def test_mail_over_the_size_limit_is_imported_headers_only(
    db: Database, new_mailbox: Any, adapters: list[EmailAdapter], tmp_path: Path
) -> None:
    box, account, adapter = await setup(
        db, new_mailbox, adapters, tmp_path, max_message_bytes=100 * 1024
    )
    mail = customer_mail("buyer@customer.test", box.address, "巨大", "big")
    mail.add_attachment(
        b"x" * (200 * 1024), maintype="application", subtype="zip", filename="a.zip"
    )
    await deliver("buyer@customer.test", box.address, mail, box.smtp_port)

    await drain(db, account, adapter)

    [stored] = await messages(db, account.id)
    assert stored.payload["subject"] == "巨大"
    assert stored.payload["imap"]["headers_only"] is True
    assert "headers only" in stored.text


async def test_each_mailbox_imports_into_its_own_account(
    db: Database, new_mailbox: Any, adapters: list[EmailAdapter], tmp_path: Path
) -> None:
    box_a, account_a, adapter_a = await setup(db, new_mailbox, adapters, tmp_path / "a")
    box_b, account_b, adapter_b = await setup(db, new_mailbox, adapters, tmp_path / "b")
    await deliver(
        "x@customer.test",
        box_a.address,
        customer_mail("x@customer.test", box_a.address, "a", "to a"),
        box_a.smtp_port,
    )
    await deliver(
        "x@customer.test",
        box_b.address,
        customer_mail("x@customer.test", box_b.address, "b", "to b"),
        box_b.smtp_port,
    )

    await drain(db, account_a, adapter_a)
    await drain(db, account_b, adapter_b)

    assert [m.text for m in await messages(db, account_a.id)] == ["to a"]
    assert [m.text for m in await messages(db, account_b.id)] == ["to b"]


async def test_poller_with_idle_imports_mail_that_arrives_while_waiting(
    db: Database, new_mailbox: Any, adapters: list[EmailAdapter], tmp_path: Path
) -> None:
    box, account, adapter = await setup(db, new_mailbox, adapters, tmp_path)
    stop = asyncio.Event()
    published: list[RecordResult] = []
    stored = asyncio.Event()

    async def publish(result: RecordResult) -> None:
        published.append(result)
        if result.message_ids:
            stored.set()

    # a long idle_wait: only the IDLE push can bring the mail in within the deadline
    poller = asyncio.create_task(run_poller(db, account.id, adapter, publish, stop, idle_wait=600))
    try:
        async with asyncio.timeout(20):
            while not published:  # the first (empty) page is stored: IDLE comes next
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.2)  # let IDLE start; the push is what we wait for
            await deliver(
                "buyer@customer.test",
                box.address,
                customer_mail("buyer@customer.test", box.address, "idle", "pushed"),
                box.smtp_port,
            )
            await stored.wait()
    finally:
        stop.set()
        # a stopped poller leaves IDLE at once (a swallowed cancel once kept it minutes)
        async with asyncio.timeout(10):
            await poller

    assert [m.text for m in await messages(db, account.id)] == ["pushed"]


async def test_bounce_handler_suppresses_the_address_once(
    db: Database, new_mailbox: Any, adapters: list[EmailAdapter], tmp_path: Path
) -> None:
    from channels.email.handlers import mark_bounced_addresses
    from conversations.handlers import EventContext
    from conversations.models import ChannelAccount
    from conversations.types import ChannelRules

    box, account, adapter = await setup(db, new_mailbox, adapters, tmp_path)
    await deliver(
        "",
        box.address,
        dsn_for(b"Message-ID: <x@y.test>\r\n\r\n", box.address, "gone@customer.test"),
        box.smtp_port,
    )
    await drain(db, account, adapter)

    async with db.transaction() as session:
        [event] = list(await session.scalars(select(ChannelEvent)))
        row = await session.get(ChannelAccount, account.id)
        assert row is not None
        ctx = EventContext(session, row, ChannelRules(), event, event.occurred_at)
        await mark_bounced_addresses(ctx)
        await mark_bounced_addresses(ctx)  # idempotent
    async with db.reading() as session:
        assert await is_suppressed(session, channel="email", address="gone@customer.test")
        from conversations.consent import Suppression

        count = await session.scalar(select(func.count()).select_from(Suppression))
    assert count == 1


@pytest.mark.parametrize(
    "name", ["gbk_subject_outlook.eml", "big5_body.eml", "gb2312_label_gbk_chars.eml"]
)
async def test_chinese_fixture_survives_real_delivery(
    name: str, db: Database, new_mailbox: Any, adapters: list[EmailAdapter], tmp_path: Path
) -> None:
    from channels.email.mime_parse import parse_email

    from .conftest import fixture_bytes

    box, account, adapter = await setup(db, new_mailbox, adapters, tmp_path)
    raw = fixture_bytes(name)
    await deliver("sender@customer.test", box.address, raw, box.smtp_port)

    await drain(db, account, adapter)

    [stored] = await messages(db, account.id)
    expected = parse_email(raw)
    assert stored.payload["subject"] == expected.subject
    assert "\ufffd" not in stored.text and "\ufffd" not in stored.payload["subject"]


async def test_several_folders_including_a_chinese_name_are_imported(
    db: Database, new_mailbox: Any, adapters: list[EmailAdapter], tmp_path: Path
) -> None:
    from .conftest import _connect

    box = new_mailbox()
    conn = await _connect(box)
    try:
        await conn._client.check("CREATE", encode_folder("客户来信"))
    finally:
        await conn.close()
    account = await create_account(db, box, folders=["INBOX", "客户来信"])
    adapter = EmailAdapter(account, channel_context(tmp_path))
    adapters.append(adapter)
    await append(box, bytes(customer_mail("a@customer.test", box.address, "in", "inbox mail")))
    await append(
        box, bytes(customer_mail("b@customer.test", box.address, "sub", "folder mail")), "客户来信"
    )

    await drain(db, account, adapter)

    assert sorted(m.text for m in await messages(db, account.id)) == ["folder mail", "inbox mail"]
    cursors = await load_cursors(db, account.id)
    assert set(cursors) == {"imap:INBOX", "imap:客户来信"}


async def test_without_idle_wait_for_new_falls_back_to_polling(
    db: Database, new_mailbox: Any, adapters: list[EmailAdapter], tmp_path: Path
) -> None:
    box, account, adapter = await setup(db, new_mailbox, adapters, tmp_path)
    await drain(db, account, adapter)
    adapter._imap._client.capabilities.discard("IDLE")  # a server without IDLE

    async with asyncio.timeout(5):
        await adapter.wait_for_new(0.05)


async def test_sent_mail_is_filed_and_a_retry_after_an_unknown_outcome_is_not_resent(
    db: Database, new_mailbox: Any, adapters: list[EmailAdapter], tmp_path: Path, smtp_server: Any
) -> None:
    box, account, adapter = await setup(db, new_mailbox, adapters, tmp_path, sent_folder="Sent")
    customer = new_mailbox()
    out = Outbound(
        key="outbox-filed",
        account=account,
        recipient=customer.address,
        kind=MessageKind.TEXT,
        text="已发货",
        purpose=Purpose.REPLY,
    )
    first = await adapter.send(out)
    [copy] = await read_mailbox(box, "Sent")
    assert email.message_from_bytes(copy)["Message-ID"] == first.provider_message_id

    # another process (no shared state) retries after it recorded UNKNOWN
    other = EmailAdapter(account, channel_context(tmp_path / "other"))
    adapters.append(other)
    retry = await other.send(dataclasses.replace(out, attempt=2))  # same key, 2nd try

    assert retry.outcome == SendOutcome.SENT
    assert retry.provider_message_id == first.provider_message_id
    assert len(smtp_server.received_for(customer.address)) == 1


@pytest.mark.parametrize("name", ["malformed_mime.eml", "missing_message_id.eml"])
async def test_bad_mail_is_stored_and_imported_once(
    name: str, db: Database, new_mailbox: Any, adapters: list[EmailAdapter], tmp_path: Path
) -> None:
    from .conftest import fixture_bytes

    box, account, adapter = await setup(db, new_mailbox, adapters, tmp_path)
    await append(box, fixture_bytes(name))
    await drain(db, account, adapter)
    await adapter.aclose()
    # a fresh start without the cursor (e.g. a restored database) sees the mail again
    async with db.transaction() as session:
        from conversations.models import ChannelCursor

        await session.execute(
            ChannelCursor.__table__.delete().where(ChannelCursor.account_id == account.id)
        )
    result = await drain(db, account, adapter)

    [stored] = await messages(db, account.id)
    assert stored.raw and stored.text
    assert result.duplicates == 1


async def test_marketing_mail_one_click_unsubscribe_lands_on_the_do_not_contact_list(
    db: Database,
    new_mailbox: Any,
    adapters: list[EmailAdapter],
    tmp_path: Path,
    aiohttp_client: Any,
) -> None:
    from aiohttp import web

    from channels.email.unsubscribe import routes

    box, account, adapter = await setup(db, new_mailbox, adapters, tmp_path)
    customer = new_mailbox()
    out = Outbound(
        key="broadcast-1:customer-9",
        account=account,
        recipient=customer.address,
        kind=MessageKind.TEXT,
        text="双十一特惠",
        purpose=Purpose.MARKETING,
        payload={"subject": "双十一特惠"},
    )
    assert (await adapter.send(out)).outcome == SendOutcome.SENT
    [raw] = await read_mailbox(customer)
    got = email.message_from_bytes(raw, policy=default_policy)
    assert got["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    https = next(
        part.strip(" <>") for part in str(got["List-Unsubscribe"]).split(",") if "https://" in part
    )
    app = web.Application()
    app.add_routes(routes(db, bytes.fromhex(account.secrets["unsubscribe_key"])))
    client = await aiohttp_client(app)

    # what Gmail's one-click button does (RFC 8058 §3.2)
    response = await client.post(
        https.removeprefix("https://crm.example.test"), data={"List-Unsubscribe": "One-Click"}
    )

    assert response.status == 200
    async with db.reading() as session:
        assert await is_suppressed(session, channel="email", address=customer.address)
