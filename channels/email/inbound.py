"""A fetched mail → crmbot's Inbound values (message, or bounce status + event).

Dedupe key: the Message-ID, or a hash of the raw bytes when there is none, so the same
mail seen again (a UIDVALIDITY resync, a copy in another folder) is stored once.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from channels.media import MediaRejected, MediaStore
from conversations.types import (
    Inbound,
    InboundEvent,
    InboundMessage,
    MessageKind,
    MessageStatus,
    StatusUpdate,
)

from .bounces import Bounce, parse_bounce
from .loop_guard import automated_reason, is_role_sender, subject_hint
from .mime_parse import ParsedEmail, parse_email
from .quoting import strip_quoted
from .thread_headers import thread_info, thread_refs

log = logging.getLogger(__name__)

MAX_RAW_CHARS = 512 * 1024  # the messages.raw column keeps at most this much of the mail
MAX_HTML_CHARS = 512 * 1024
MAX_LISTED_RECIPIENTS = 50  # a mail to 1,000 people lists 50 and counts the rest
UNKNOWN_SENDER = "unknown-sender@invalid"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_UNSUBSCRIBE_SUBJECT = re.compile(r"^\s*(?:unsubscribe|退订)\b", re.I)


@dataclass(frozen=True)
class MailSource:
    """Where a mail came from (IMAP coordinates), kept in the payload for support."""

    folder: str | None = None
    uid: int | None = None
    uidvalidity: int | None = None
    internal_date: datetime | None = None
    truncated: bool = False  # over max_message_bytes: only headers were fetched


def provider_key_for(mail: ParsedEmail) -> str:
    if mail.message_id and len(mail.message_id) <= 240:
        return mail.message_id
    if mail.message_id:  # absurdly long ids still dedupe, by hash
        return "mid-sha256:" + hashlib.sha256(mail.message_id.encode()).hexdigest()
    return "sha256:" + mail.raw_sha256


def mail_to_inbound(
    raw: bytes,
    *,
    own_addresses: frozenset[str],
    media: MediaStore | None,
    source: MailSource | None = None,
) -> list[Inbound]:
    """Parse one raw mail into Inbound values; never raises on bad mail."""
    source = source or MailSource()
    try:
        return _to_inbound(raw, own_addresses, media, source)
    except Exception:  # noqa: BLE001  (a mail we cannot read is still stored raw, never dropped)
        digest = hashlib.sha256(raw).hexdigest()
        log.exception("mail sha256=%s could not be converted; stored raw", digest)
        return [
            InboundMessage(
                provider_key=f"sha256:{digest}",
                external_id=UNKNOWN_SENDER,
                kind=MessageKind.UNKNOWN,
                text="[无法解析的邮件 / unparseable mail]",
                occurred_at=source.internal_date or EPOCH,
                raw=_raw_text(raw),
                payload={"raw_sha256": digest, "raw_size": len(raw)},
                automated=True,
            )
        ]


def _to_inbound(
    raw: bytes, own_addresses: frozenset[str], media: MediaStore | None, source: MailSource
) -> list[Inbound]:
    mail = parse_email(raw)
    if mail.defects:
        log.info("mail %s parsed with defects: %s", provider_key_for(mail), "; ".join(mail.defects))
    bounce = parse_bounce(mail)
    if bounce is not None:
        return _bounce_items(mail, bounce, raw, source)
    message = _message(mail, raw, own_addresses, media, source)
    if _UNSUBSCRIBE_SUBJECT.match(mail.subject) and mail.from_addr and not message.automated:
        # the mailto: half of our List-Unsubscribe header (RFC 2369): the sender asks
        # to stop marketing mail; the message stays visible in the conversation too
        return [
            message,
            InboundEvent(
                provider_key=f"unsubscribe:{message.provider_key}",
                event_type="email.unsubscribe",
                occurred_at=message.occurred_at,
                payload={"subject": message.payload["subject"]},
                external_id=mail.from_addr,
            ),
        ]
    return [message]


def _occurred_at(mail: ParsedEmail, source: MailSource) -> datetime:
    # a Date far in the future is a broken clock or spam: trust the server's date then
    if mail.date is not None and (
        source.internal_date is None or mail.date <= source.internal_date + timedelta(days=2)
    ):
        return mail.date
    return source.internal_date or EPOCH


def _message(
    mail: ParsedEmail,
    raw: bytes,
    own_addresses: frozenset[str],
    media: MediaStore | None,
    source: MailSource,
) -> InboundMessage:
    key = provider_key_for(mail)
    unparseable = not mail.headers
    reason = automated_reason(mail, own_addresses) if not unparseable else "unparseable mail"
    body = _clean(mail.text)
    shown = strip_quoted(body) if body.strip() else ""
    attachments = [
        _attachment(a.filename, a.content_type, a.data, a.inline, a.content_id, media)
        for a in mail.attachments
    ]
    payload: dict[str, Any] = {
        "subject": _clean(mail.subject),
        "from": {"address": mail.from_addr, "name": _clean(mail.from_name or "") or None},
        "to": list(mail.to[:MAX_LISTED_RECIPIENTS]),
        "to_count": len(mail.to),
        "cc": list(mail.cc[:MAX_LISTED_RECIPIENTS]),
        "cc_count": len(mail.cc),
        "reply_to": mail.reply_to,
        "thread": thread_info(mail, own_addresses),
        "body": body,
        "html": _clean(mail.html)[:MAX_HTML_CHARS] if mail.html else None,
        "attachments": attachments,
        "automated_reason": reason,
        "auto_reply_subject": subject_hint(mail.subject),
        "defects": list(mail.defects),
        "raw_sha256": mail.raw_sha256,
        "raw_size": len(raw),
        "imap": {
            "folder": source.folder,
            "uid": source.uid,
            "uidvalidity": source.uidvalidity,
            "headers_only": source.truncated,
        },
    }
    if media is not None and not source.truncated:
        payload["eml"] = _store_eml(raw, media)
    if unparseable:
        text = "[无法解析的邮件 / unparseable mail] " + body[:500]
        kind = MessageKind.UNKNOWN
    else:
        text = shown
        if source.truncated:
            text = (text + "\n\n" if text else "") + (
                f"[邮件过大，仅导入邮件头 / mail too large ({len(raw)} bytes shown of more), headers only]"
            )
        kind = MessageKind.EMAIL
    sender = mail.from_addr or UNKNOWN_SENDER
    name = _clean(mail.from_name) if mail.from_name else None
    answer = payload["thread"]["answer_to"]
    if answer and answer != mail.from_addr and is_role_sender(mail.from_addr):
        # a web form or shop system writes From noreply@ with the visitor in Reply-To:
        # the visitor is the customer, so each lead gets a conversation of its own
        sender, name = answer, None
    hints = {"email": sender} if sender != UNKNOWN_SENDER else {}
    if name:
        hints["name"] = name
    return InboundMessage(
        provider_key=key,
        external_id=sender,
        kind=kind,
        text=text,
        occurred_at=_occurred_at(mail, source),
        raw=_raw_text(raw),
        payload=payload,
        sender_name=name,
        automated=reason is not None,
        contact_hints=hints,
        provider_message_id=mail.message_id,
        thread_refs=thread_refs(mail),
    )


def _bounce_items(
    mail: ParsedEmail, bounce: Bounce, raw: bytes, source: MailSource
) -> list[Inbound]:
    key = provider_key_for(mail)
    occurred = _occurred_at(mail, source)
    items: list[Inbound] = []
    if bounce.failed and bounce.original_message_id:
        items.append(
            StatusUpdate(
                provider_key=f"bounce:{key}",
                status=MessageStatus.FAILED,
                occurred_at=occurred,
                provider_message_id=bounce.original_message_id,
                error_code=(bounce.recipients[0].status if bounce.recipients else None) or "bounce",
                reason=bounce.summary,
            )
        )
    permanent = [r.address for r in bounce.recipients if r.permanent]
    items.append(
        InboundEvent(
            provider_key=f"bounce:{key}",
            event_type="email.bounce",
            occurred_at=occurred,
            payload={
                "original_message_id": bounce.original_message_id,
                "summary": bounce.summary,
                "subject": _clean(mail.subject),
                "from": mail.from_addr,
                "recipients": [
                    {
                        "address": r.address,
                        "status": r.status,
                        "action": r.action,
                        "diagnostic": r.diagnostic,
                    }
                    for r in bounce.recipients
                ],
                "permanent": permanent,
            },
            raw=_raw_text(raw),
            external_id=permanent[0] if permanent else None,
        )
    )
    return items


def _attachment(
    filename: str | None,
    content_type: str,
    data: bytes,
    inline: bool,
    content_id: str | None,
    media: MediaStore | None,
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "filename": _clean(filename) if filename else None,
        "declared_type": content_type,
        "size": len(data),
        "inline": inline,
        "content_id": content_id,
    }
    if media is None:
        entry["sha256"] = hashlib.sha256(data).hexdigest()
        entry["status"] = "not_stored"
        return entry
    try:
        stored = media.put(data, filename=filename)
    except MediaRejected as exc:
        log.info("attachment %r (%d bytes) refused: %s", filename, len(data), exc.reason)
        entry["status"] = "rejected"
        entry["reason"] = exc.reason
        return entry
    entry.update(sha256=stored.sha256, mime=stored.mime, status="stored")
    return entry


def _store_eml(raw: bytes, media: MediaStore) -> dict[str, Any]:
    try:
        stored = media.put(raw, filename="message.eml")
    except MediaRejected as exc:
        return {"status": "rejected", "reason": exc.reason}
    return {"status": "stored", "sha256": stored.sha256, "size": stored.size}


def _raw_text(raw: bytes) -> str:
    text = raw[:MAX_RAW_CHARS].decode("utf-8", errors="replace")
    if len(raw) > MAX_RAW_CHARS:
        text += f"\n[… {len(raw) - MAX_RAW_CHARS} more bytes; full mail in payload.eml]"
    return _clean(text)


def _clean(text: str) -> str:
    # PostgreSQL text and JSON columns refuse NUL characters
    return text.replace("\x00", "")
