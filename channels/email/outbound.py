"""Building and sending our mail (aiosmtplib), always UTF-8 (research note §3d.3)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr
from typing import Any

import aiosmtplib

from channels.media import MediaStore
from conversations.types import Outbound, Purpose

from .config_check import MailboxConfig, ServerConfig, is_address
from .oauth import TokenSource
from .thread_headers import base_subject, message_id_for, reply_headers, reply_subject, safe_subject
from .unsubscribe import list_unsubscribe_headers

log = logging.getLogger(__name__)

# RFC 3834 §5: what our automatic mail says about itself
_AUTO_SUBMITTED = {
    Purpose.AUTO_REPLY: "auto-replied",
    Purpose.NOTIFICATION: "auto-replied",
    Purpose.WELCOME: "auto-generated",
    Purpose.REMINDER: "auto-generated",
}
DEFAULT_SUBJECT = "来自 {name} 的消息 / Message from {name}"


class InvalidOutbound(ValueError):
    """The outbound message itself cannot be sent (bad address, missing key…)."""


def build_message(
    out: Outbound,
    cfg: MailboxConfig,
    *,
    media: MediaStore | None = None,
    unsubscribe_key: bytes | None = None,
    now: datetime | None = None,
) -> EmailMessage:
    """The MIME message for one outbox item; the Message-ID derives from `out.key`."""
    recipient = out.recipient.strip().lower()
    if not is_address(recipient):
        raise InvalidOutbound(f"not an email address: {out.recipient!r}")
    payload: Mapping[str, Any] = out.payload
    # marketing mail starts its own thread and goes only to the address the opt-out
    # check cleared; everything else answers the conversation's last inbound mail
    reply_to: Mapping[str, Any] | None = (
        None if out.purpose == Purpose.MARKETING else out.context.get("reply_to")
    )
    thread = (reply_to or {}).get("thread") or {}

    msg = EmailMessage(policy=SMTP)
    display = safe_subject(cfg.display_name or "")
    msg["From"] = formataddr((display, cfg.address)) if display else cfg.address
    to, cc = _addressees(recipient, thread, cfg.address)
    msg["To"] = to
    if cc:
        msg["Cc"] = cc
    msg["Subject"] = _subject(payload, thread, cfg)
    msg["Message-ID"] = message_id_for(out.key, cfg.message_id_domain)
    if now is not None:
        msg["Date"] = format_datetime(now)
    for name, value in reply_headers(reply_to).items():
        msg[name] = value
    auto = _AUTO_SUBMITTED.get(out.purpose)
    if auto:
        msg["Auto-Submitted"] = auto
        msg["X-Auto-Response-Suppress"] = "All"  # Exchange: no out-of-office back to us
    if out.purpose == Purpose.MARKETING:
        if unsubscribe_key is None or not cfg.unsubscribe_url:
            raise InvalidOutbound(
                "marketing mail needs List-Unsubscribe: unsubscribe key or URL not configured"
            )
        headers = list_unsubscribe_headers(
            unsubscribe_key, out.account.id, recipient, cfg.unsubscribe_url, cfg.unsubscribe_mailto
        )
        for name, value in headers.items():
            msg[name] = value
        msg["Precedence"] = "bulk"  # vacation responders stay quiet (RFC 3834 §2)

    text = str(payload.get("text") or out.text)
    msg.set_content(text, charset="utf-8")
    html = payload.get("html")
    if isinstance(html, str) and html:
        msg.add_alternative(html, subtype="html", charset="utf-8")
    for ref in payload.get("attachments") or []:
        _attach(msg, ref, media)
    return msg


def _addressees(recipient: str, thread: Mapping[str, Any], own: str) -> tuple[str, str | None]:
    """(To, Cc) of a reply: the answered mail's Reply-To or From; when someone other than
    the customer wrote it (a colleague who joined the thread), the customer stays in Cc."""
    answer = thread.get("answer_to")
    if not isinstance(answer, str) or not is_address(answer) or answer == own:
        return recipient, None
    author = thread.get("from")
    if answer != recipient and isinstance(author, str) and author != recipient:
        return answer, recipient
    return answer, None


def _subject(payload: Mapping[str, Any], thread: Mapping[str, Any], cfg: MailboxConfig) -> str:
    explicit = payload.get("subject")
    if isinstance(explicit, str) and safe_subject(explicit):
        return safe_subject(explicit)
    parent = thread.get("subject")
    if isinstance(parent, str) and base_subject(safe_subject(parent)):
        return reply_subject(parent)
    return DEFAULT_SUBJECT.format(name=safe_subject(cfg.display_name or cfg.address))


def _attach(msg: EmailMessage, ref: Any, media: MediaStore | None) -> None:
    if not isinstance(ref, Mapping) or not isinstance(ref.get("sha256"), str):
        raise InvalidOutbound(f"attachment reference without sha256: {ref!r}")
    if media is None:
        raise InvalidOutbound("attachments need the media store")
    data = media.read(ref["sha256"])
    mime = str(ref.get("mime") or "application/octet-stream")
    maintype, _, subtype = mime.partition("/")
    filename = safe_subject(str(ref.get("filename") or "attachment"))
    msg.add_attachment(
        data, maintype=maintype, subtype=subtype or "octet-stream", filename=filename
    )


async def smtp_send(
    msg: EmailMessage,
    server: ServerConfig,
    sender: str,
    limit: float,
    tokens: TokenSource | None = None,
) -> None:
    """Submit one message; raises aiosmtplib/OS/OAuth errors for errors.send_result_for."""
    if not server.oauth:
        await aiosmtplib.send(msg, sender=sender, password=server.password, **_smtp(server, limit))
        return
    if tokens is None:
        raise InvalidOutbound("OAuth login needs a token source")
    try:
        await aiosmtplib.send(
            msg, sender=sender, oauth_token_generator=tokens.token_generator, **_smtp(server, limit)
        )
    except aiosmtplib.SMTPAuthenticationError as exc:
        # refused before MAIL FROM, so nothing was sent: once more with a fresh token
        log.info("SMTP XOAUTH2 refused for %s (%s): refreshing the token", server.username, exc)
        await tokens.access_token(refresh=True)
        await aiosmtplib.send(
            msg, sender=sender, oauth_token_generator=tokens.token_generator, **_smtp(server, limit)
        )


def _smtp(server: ServerConfig, limit: float) -> dict[str, Any]:
    return {
        "hostname": server.host,
        "port": server.port,
        "username": server.username,
        "use_tls": server.security == "ssl",
        "start_tls": server.security == "starttls",
        "tls_context": server.tls_context() if server.security != "none" else None,
        "timeout": limit,
    }
