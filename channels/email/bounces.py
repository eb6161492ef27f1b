"""Bounces: RFC 3464 delivery status notifications mapped back to the mail we sent.

The original Message-ID comes from the returned headers (text/rfc822-headers or
message/rfc822 part); since we generate our Message-IDs (thread_headers.message_id_for),
it identifies the outbound message to fail. Non-standard bounces from MAILER-DAEMON that
carry the original mail are accepted too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email import message_from_string
from email.message import Message
from email.policy import compat32

from .charsets import decode_header_value
from .loop_guard import is_dsn
from .mime_parse import ParsedEmail

_STATUS = re.compile(r"\b([245])\.\d{1,3}\.\d{1,3}\b")
_BOUNCE_SENDER = re.compile(r"^(?:mailer-daemon|postmaster)(?:[+._-].*)?@", re.I)


@dataclass(frozen=True)
class FailedRecipient:
    address: str
    status: str  # "5.1.1"
    action: str  # "failed" | "delayed" | …
    diagnostic: str

    @property
    def permanent(self) -> bool:
        return self.action == "failed" and self.status.startswith("5")


@dataclass(frozen=True)
class Bounce:
    original_message_id: str | None
    recipients: tuple[FailedRecipient, ...]
    summary: str  # readable reason shown on the failed message

    @property
    def failed(self) -> bool:
        return any(r.action == "failed" for r in self.recipients) or not self.recipients


def parse_bounce(mail: ParsedEmail) -> Bounce | None:
    """The bounce this mail reports, or None if it is not a bounce."""
    msg = mail.message
    if msg is None:
        return None
    if is_dsn(mail):
        recipients = tuple(_recipients(msg))
        if recipients and all(r.action not in ("failed", "delayed") for r in recipients):
            return None  # "delivered"/"relayed"/"expanded" reports are not failures
        if recipients and all(r.action == "delayed" for r in recipients):
            return None  # the MTA keeps trying; the final verdict comes later
        return Bounce(_original_id(msg), recipients, _summary(recipients, mail.subject))
    if _BOUNCE_SENDER.match(mail.from_addr or ""):
        original = _original_id(msg)
        if original is not None:
            return Bounce(original, (), _summary((), mail.subject))
    return None


def _recipients(msg: Message) -> list[FailedRecipient]:
    out: list[FailedRecipient] = []
    for part in msg.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        blocks = part.get_payload()
        if isinstance(blocks, str):  # some MTAs send it unparsed
            blocks = [message_from_string(b, policy=compat32) for b in blocks.split("\n\n")]
        for block in blocks if isinstance(blocks, list) else []:
            if not isinstance(block, Message):
                continue
            final = block.get("final-recipient") or block.get("original-recipient")
            if not final:
                continue  # the per-message block
            address = str(final).split(";", 1)[-1].strip().strip("<>").lower()
            action = str(block.get("action", "")).strip().lower()
            status_match = _STATUS.search(str(block.get("status", "")))
            status = status_match.group(0) if status_match else ""
            diagnostic = decode_header_value(str(block.get("diagnostic-code", "")))
            diagnostic = diagnostic.split(";", 1)[-1].strip()
            out.append(FailedRecipient(address, status, action, diagnostic[:400]))
    return out


def _original_id(msg: Message) -> str | None:
    for part in msg.walk():
        ctype = part.get_content_type()
        headers: Message | None = None
        if ctype == "text/rfc822-headers":
            payload = part.get_payload(decode=True)
            text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
            headers = message_from_string(text, policy=compat32)
        elif ctype == "message/rfc822" and part is not msg:
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                headers = inner[0]
        if headers is not None and headers.get("message-id"):
            value = str(headers["message-id"]).strip()
            match = re.search(r"<[^<>\s]+@[^<>\s]+>", value)
            return match.group(0) if match else None
    return None


def _summary(recipients: tuple[FailedRecipient, ...], subject: str) -> str:
    if not recipients:
        return f"bounced: {subject}"[:500]
    parts = []
    for r in recipients:
        detail = r.diagnostic or r.action
        parts.append(f"{r.address} {r.status} {detail}".strip())
    return ("bounced: " + "; ".join(parts))[:500]
