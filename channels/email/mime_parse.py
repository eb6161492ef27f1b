"""RFC 5322 / MIME parsing into a `ParsedEmail`: pure, and never raises.

We use the standard library's parser with the compat32 policy (raw header strings, no
eager decoding) and decode headers and bodies ourselves with our charset map, because
the default policy turns GB2312-labelled GBK text into replacement characters
(research note §3d). Anything the parser cannot make sense of is reported in `defects`
and the message is still returned, so the raw mail is stored and visible.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import Message
from email.policy import compat32
from email.utils import getaddresses, parsedate_to_datetime

from .charsets import codec_for, decode_bytes, decode_header_value
from .html_text import html_to_text

log = logging.getLogger(__name__)

MAX_PARTS = 500  # a mail with more MIME parts is hostile or broken; the rest is ignored
MAX_ADDRESSES = 2000


@dataclass(frozen=True)
class Attachment:
    filename: str | None
    content_type: str
    data: bytes
    content_id: str | None = None
    inline: bool = False


@dataclass(frozen=True)
class ParsedEmail:
    raw_sha256: str
    message_id: str | None  # with angle brackets, as in headers: "<abc@host>"
    in_reply_to: str | None
    references: tuple[str, ...]
    subject: str
    from_addr: str  # lower case; "" when missing or unparseable
    from_name: str | None
    to: tuple[str, ...]
    cc: tuple[str, ...]
    reply_to: str | None
    date: datetime | None
    content_type: str
    text: str  # the plain-text body (from the HTML part when there is no text part)
    html: str | None
    attachments: tuple[Attachment, ...]
    headers: tuple[tuple[str, str], ...]  # decoded, names lower-cased, in order
    defects: tuple[str, ...] = ()
    message: Message | None = field(default=None, compare=False, repr=False)

    def header(self, name: str) -> str | None:
        """First value of a header (case-insensitive), decoded."""
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return None


def parse_email(raw: bytes) -> ParsedEmail:
    """Parse raw RFC 822 bytes; on any failure return what could be read plus defects."""
    digest = hashlib.sha256(raw).hexdigest()
    try:
        return _parse(raw, digest)
    except Exception as exc:  # noqa: BLE001  (bad input must still be stored raw, never crash)
        log.warning("unparseable mail sha256=%s: %r", digest, exc)
        text, _ = decode_bytes(raw[:200_000])
        return ParsedEmail(
            raw_sha256=digest,
            message_id=None,
            in_reply_to=None,
            references=(),
            subject="",
            from_addr="",
            from_name=None,
            to=(),
            cc=(),
            reply_to=None,
            date=None,
            content_type="application/octet-stream",
            text=text,
            html=None,
            attachments=(),
            headers=(),
            defects=(f"unparseable: {type(exc).__name__}: {exc}"[:300],),
        )


def _parse(raw: bytes, digest: str) -> ParsedEmail:
    repaired, dropped = _repair_header_block(raw)
    msg = message_from_bytes(repaired, policy=compat32)
    defects = [type(d).__name__ for d in msg.defects]
    if dropped:
        defects.append(f"dropped {dropped} non-header line(s) in the header block")
    headers = tuple(
        (str(name).lower(), decode_header_value(_header_str(value)))
        for name, value in msg.raw_items()
    )
    from_pairs = _addresses(msg, "from")
    from_name, from_addr = from_pairs[0] if from_pairs else (None, "")
    reply_to_pairs = _addresses(msg, "reply-to")
    collector = _BodyCollector()
    collector.walk(msg, depth=0)
    text = collector.text
    if not text.strip() and collector.html:
        text = html_to_text(collector.html)
    return ParsedEmail(
        raw_sha256=digest,
        message_id=_first_id(msg.get("message-id")),
        in_reply_to=_first_id(msg.get("in-reply-to")),
        references=tuple(_ids(msg.get("references"))),
        subject=decode_header_value(_raw_header(msg, "subject") or ""),
        from_addr=from_addr,
        from_name=from_name,
        to=tuple(addr for _, addr in _addresses(msg, "to")),
        cc=tuple(addr for _, addr in _addresses(msg, "cc")),
        reply_to=reply_to_pairs[0][1] if reply_to_pairs else None,
        date=_date(msg.get("date")),
        content_type=msg.get_content_type(),
        text=text,
        html=collector.html,
        attachments=tuple(collector.attachments),
        headers=headers,
        defects=tuple(defects + collector.defects),
        message=msg,
    )


_HEADER_LINE = re.compile(rb"^(?:[!-9;-~]+[ \t]*:|[ \t])")


def _repair_header_block(raw: bytes) -> tuple[bytes, int]:
    """Drop lines in the header block that are neither a header nor a continuation
    (an mbox "From " line, a client's stray text), which would otherwise end the
    headers early and push Message-ID and Content-Type into the body."""
    end = len(raw)
    for sep in (b"\r\n\r\n", b"\n\n"):
        pos = raw.find(sep)
        if pos != -1 and pos < end:
            end = pos
    lines = raw[:end].splitlines(keepends=True)
    kept = [line for line in lines if _HEADER_LINE.match(line)]
    if len(kept) == len(lines):
        return raw, 0
    return b"".join(kept) + raw[end:], len(lines) - len(kept)


def _raw_header(msg: Message, name: str) -> str | None:
    """A header's raw value: compat32's get() turns 8-bit bytes into U+FFFD, while the
    raw value keeps them (as surrogate escapes) for decode_header_value to recover."""
    name = name.lower()
    for key, value in msg.raw_items():
        if key.lower() == name:
            return _header_str(value)
    return None


def _header_str(value: object) -> str:
    # compat32 returns str, or a Header object for some malformed 8-bit values
    return value if isinstance(value, str) else str(value)


def _addresses(msg: Message, name: str) -> list[tuple[str | None, str]]:
    values = [_header_str(v) for k, v in msg.raw_items() if k.lower() == name]
    if not values:
        return []
    out: list[tuple[str | None, str]] = []
    for display, addr in getaddresses(values)[:MAX_ADDRESSES]:
        addr = decode_header_value(addr).strip().lower()
        if "@" not in addr:
            continue
        out.append((decode_header_value(display) or None, addr))
    return out


def _ids(value: object) -> list[str]:
    if value is None:
        return []
    text = _header_str(value)
    found: list[str] = []
    for token in text.replace(">", "> ").split():
        token = token.strip(",;")
        if token.startswith("<") and token.endswith(">") and "@" in token and len(token) <= 250:
            found.append(token)
    return found


def _first_id(value: object) -> str | None:
    ids = _ids(value)
    if ids:
        return ids[0]
    if value is None:
        return None
    # some clients send ids without angle brackets
    bare = _header_str(value).strip()
    if bare and "@" in bare and " " not in bare and len(bare) <= 248:
        return f"<{bare.strip('<>')}>"
    return None


def _date(value: object) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = parsedate_to_datetime(_header_str(value))
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)  # RFC 5322 "-0000": no zone info
    return parsed.astimezone(UTC)


class _BodyCollector:
    """Walks the MIME tree: the first text/plain and text/html bodies, everything else an
    attachment. Attached mails (message/rfc822) are not descended into: their bodies are
    not what this customer wrote."""

    def __init__(self) -> None:
        self.plain: list[str] = []
        self.html: str | None = None
        self.attachments: list[Attachment] = []
        self.defects: list[str] = []
        self.parts = 0

    @property
    def text(self) -> str:
        return "\n\n".join(p for p in self.plain if p.strip())

    def walk(self, part: Message, depth: int) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS or depth > 30:
            if "too_many_parts" not in self.defects:
                self.defects.append("too_many_parts")
            return
        ctype = part.get_content_type()
        if part.is_multipart():
            payload = part.get_payload()
            if ctype == "multipart/alternative" and isinstance(payload, list):
                self._alternative([p for p in payload if isinstance(p, Message)], depth)
                return
            for sub in payload if isinstance(payload, list) else []:
                if isinstance(sub, Message):
                    self.walk(sub, depth + 1)
            return
        filename = _filename(part)
        disposition = (part.get_content_disposition() or "").lower()
        if (
            ctype.startswith("text/")
            and ctype in ("text/plain", "text/html")
            and (disposition != "attachment" and filename is None)
        ):
            body = self._decode_text(part)
            if ctype == "text/plain":
                self.plain.append(body)
            elif self.html is None:
                self.html = body
            return
        self._attach(part, ctype, filename, disposition)

    def _alternative(self, payload: list[Message], depth: int) -> None:
        plain = [p for p in payload if p.get_content_type() == "text/plain"]
        html = [p for p in payload if p.get_content_type() == "text/html"]
        if plain:
            self.plain.append(self._decode_text(plain[0]))
        if html and self.html is None:
            self.html = self._decode_text(html[0])
        for other in payload:
            if other.get_content_type() not in ("text/plain", "text/html"):
                self.walk(other, depth + 1)

    def _decode_text(self, part: Message) -> str:
        data = _payload_bytes(part)
        text, codec = decode_bytes(data, part.get_content_charset())
        text = text.replace("\r\n", "\n")
        declared = part.get_content_charset()
        if declared and codec != "ascii" and _codec_differs(declared, codec):
            self.defects.append(f"charset {declared} decoded as {codec}")
        return text

    def _attach(self, part: Message, ctype: str, filename: str | None, disposition: str) -> None:
        if ctype == "message/rfc822":
            inner = part.get_payload()
            data = (
                inner[0].as_bytes(policy=compat32)
                if isinstance(inner, list) and inner and isinstance(inner[0], Message)
                else _payload_bytes(part)
            )
            filename = filename or "attached-message.eml"
        else:
            data = _payload_bytes(part)
        cid = part.get("content-id")
        self.attachments.append(
            Attachment(
                filename=filename,
                content_type=ctype,
                data=data,
                content_id=_header_str(cid).strip("<> ") if cid else None,
                inline=disposition == "inline",
            )
        )


def _payload_bytes(part: Message) -> bytes:
    data = part.get_payload(decode=True)
    if isinstance(data, bytes):
        return data
    payload = part.get_payload()
    if isinstance(payload, str):
        return payload.encode("utf-8", "surrogateescape")
    return b""


def _filename(part: Message) -> str | None:
    # RFC 2231 (filename*=UTF-8''…) is handled by get_filename; the common non-standard
    # name="=?GBK?B?…?=" is an RFC 2047 word inside a parameter, decoded here.
    raw = part.get_filename() or part.get_param("name")
    if raw is None:
        return None
    if isinstance(raw, tuple):  # RFC 2231 tuple from get_param
        charset, _, value = raw
        raw = decode_bytes(value.encode("latin-1", "replace"), charset)[0]
    name = decode_header_value(str(raw)).replace("/", "_").replace("\\", "_").strip()
    return name[:200] or None


def _codec_differs(declared: str, used: str) -> bool:
    return codec_for(declared) != used
