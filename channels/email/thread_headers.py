"""Threading headers (RFC 5322 §3.6.4): what we store on inbound mail and what we put on
replies so the customer's client shows one thread."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from .config_check import is_address
from .mime_parse import ParsedEmail

MAX_REFERENCES = 20  # long threads: keep the first id and the most recent ones
MAX_THREAD_REFS = 50  # ids looked up to find the conversation a mail belongs to

_REPLY_PREFIX = re.compile(
    r"^\s*(?:(?:re|fw|fwd|aw|sv|antw|回复|回覆|答复|答覆|转发|轉寄|转寄)\s*(?:\[\d+\])?\s*[:：]\s*)+",
    re.I,
)
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]+")


def thread_info(mail: ParsedEmail, own_addresses: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The payload["thread"] of an inbound mail (handed back to send() on replies)."""
    return {
        "message_id": mail.message_id,
        "references": list(mail.references[-MAX_REFERENCES:]),
        "in_reply_to": mail.in_reply_to,
        "subject": mail.subject,
        "from": mail.from_addr or None,
        "answer_to": answer_address(mail, own_addresses),
    }


def answer_address(mail: ParsedEmail, own_addresses: frozenset[str] = frozenset()) -> str | None:
    """Who a reply goes to: Reply-To when it names someone else (RFC 5322 §3.6.2: "the
    author suggests replies be sent to"), else From. Our own address is never an answer
    address: a Reply-To pointing back at the mailbox would mail ourselves in a loop."""
    for candidate in (mail.reply_to, mail.from_addr):
        if candidate and is_address(candidate) and candidate not in own_addresses:
            return candidate
    return None


def thread_refs(mail: ParsedEmail) -> tuple[str, ...]:
    """The ids this mail answers, nearest first: In-Reply-To, then References newest first
    (RFC 5322 §3.6.4: References lists the thread oldest to newest)."""
    ordered: list[str] = []
    for ref in (mail.in_reply_to, *reversed(mail.references)):
        if ref and ref != mail.message_id and ref not in ordered and _valid_id(ref):
            ordered.append(ref)
    return tuple(ordered[:MAX_THREAD_REFS])


def message_id_for(key: str, domain: str) -> str:
    """Our Message-ID for an outbox key: a retry of the same key reuses it."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"<crmbot.{digest}@{domain}>"


def safe_subject(subject: str) -> str:
    """One line: CR/LF and other control characters (header injection) become spaces."""
    return re.sub(r"\s{2,}", " ", _CONTROL.sub(" ", subject)).strip()[:500]


def base_subject(subject: str) -> str:
    """Subject without Re:/Fwd:/回复:/答复:/转发: prefixes."""
    return _REPLY_PREFIX.sub("", subject).strip()


def reply_subject(subject: str) -> str:
    base = base_subject(safe_subject(subject))
    return f"Re: {base}" if base else "Re:"


def reply_headers(reply_to: Mapping[str, Any] | None) -> dict[str, str]:
    """In-Reply-To / References for a reply to the mail described by `reply_to`
    ({"provider_message_id": …, "thread": payload["thread"]})."""
    if not reply_to:
        return {}
    thread = reply_to.get("thread") or {}
    parent = thread.get("message_id") or reply_to.get("provider_message_id")
    if not isinstance(parent, str) or not _valid_id(parent):
        return {}
    refs = [r for r in (thread.get("references") or []) if isinstance(r, str) and _valid_id(r)]
    if not refs and isinstance(thread.get("in_reply_to"), str) and _valid_id(thread["in_reply_to"]):
        refs = [thread["in_reply_to"]]
    refs = [r for r in refs if r != parent] + [parent]
    if len(refs) > MAX_REFERENCES:
        refs = refs[:1] + refs[-(MAX_REFERENCES - 1) :]
    return {"In-Reply-To": parent, "References": " ".join(refs)}


def _valid_id(value: str) -> bool:
    return bool(re.fullmatch(r"<[^<>\s]+@[^<>\s]+>", value))
