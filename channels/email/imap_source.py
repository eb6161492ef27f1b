"""One IMAP connection (aioimaplib): select, UID fetches, IDLE.

aioimaplib is the maintained asyncio IMAP client (research note §3e); it leaves response
parsing to us, which is done here and nowhere else.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

import aioimaplib

from .config_check import ServerConfig
from .errors import ImapError

log = logging.getLogger(__name__)

_FETCH_LINE = re.compile(rb"^\d+ FETCH \((.*)$", re.S)
_UID = re.compile(rb"\bUID (\d+)")
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")
_INTERNALDATE = re.compile(rb'\bINTERNALDATE "([^"]+)"')
_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]")
_UIDNEXT = re.compile(rb"\[UIDNEXT (\d+)\]")
CLIENT_VERSION = "0.1"
_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


@dataclass(frozen=True)
class FolderState:
    uidvalidity: int
    uidnext: int | None


@dataclass(frozen=True)
class MessageMeta:
    uid: int
    size: int
    internal_date: datetime | None


class ImapConnection:
    """A logged-in connection; any failure leaves it closed so the caller reconnects."""

    def __init__(self, server: ServerConfig, timeout: float) -> None:
        self._server = server
        self._timeout = timeout
        self._client: aioimaplib.IMAP4 | None = None
        self.selected: str | None = None

    @property
    def connected(self) -> bool:
        return self._client is not None

    @property
    def supports_idle(self) -> bool:
        return self._client is not None and self._client.has_capability("IDLE")

    async def connect(self) -> None:
        server = self._server
        if server.security == "ssl":
            client: aioimaplib.IMAP4 = aioimaplib.IMAP4_SSL(
                host=server.host,
                port=server.port,
                timeout=self._timeout,
                ssl_context=server.tls_context(),
            )
        else:
            client = aioimaplib.IMAP4(host=server.host, port=server.port, timeout=self._timeout)
        self._client = client
        try:
            await client.wait_hello_from_server()
            if server.security == "starttls":
                await self._starttls(client)
            response = await client.login(server.username, server.password)
            if response.result != "OK":
                raise ImapError(
                    f"IMAP login refused for {server.username}: {_text(response.lines)}",
                    translation_key="email.imap_login_refused",
                )
            # some servers only list extensions (IDLE) after login
            await client.protocol.capability()
            if client.has_capability("ID"):
                # 163/126 (NetEase) answer "Unsafe Login" to SELECT until the client has
                # identified itself with ID (RFC 2971)
                await client.id(name="crmbot", version=CLIENT_VERSION, vendor="crmbot")
        except BaseException:
            await self.close()
            raise

    async def _starttls(self, client: aioimaplib.IMAP4) -> None:
        # aioimaplib has no STARTTLS command: issue it and upgrade the transport ourselves
        protocol = client.protocol
        if "STARTTLS" not in protocol.capabilities:
            raise ImapError("server does not offer STARTTLS", translation_key="email.no_starttls")
        command = aioimaplib.Command("STARTTLS", protocol.new_tag(), loop=protocol.loop)
        response = await asyncio.wait_for(protocol.execute(command), self._timeout)
        if response.result != "OK":
            raise ImapError(f"STARTTLS refused: {_text(response.lines)}")
        loop = asyncio.get_running_loop()
        transport = await loop.start_tls(
            protocol.transport,
            protocol,
            self._server.tls_context(),
            server_hostname=self._server.host,
        )
        protocol.transport = transport
        await protocol.capability()  # RFC 3501 §6.2.1: capabilities must be re-read after TLS

    async def close(self, *, graceful: bool = True) -> None:
        """LOGOUT and close; `graceful=False` only drops the socket (mid-IDLE, broken)."""
        client, self._client, self.selected = self._client, None, None
        if client is None:
            return
        if graceful and not client.has_pending_idle():
            with contextlib.suppress(Exception):  # best effort: the connection may be dead
                await asyncio.wait_for(client.logout(), 5)
        transport = client.protocol.transport if client.protocol else None
        if transport is not None:
            transport.close()

    def _require(self) -> aioimaplib.IMAP4:
        if self._client is None:
            raise ImapError("not connected")
        return self._client

    async def select(self, folder: str) -> FolderState:
        response = await self._require().select(encode_folder(folder))
        if response.result != "OK":
            raise ImapError(f"cannot open folder {folder!r}: {_text(response.lines)}")
        self.selected = folder
        data = b"\n".join(bytes(line) for line in response.lines)
        validity = _UIDVALIDITY.search(data)
        if validity is None:
            raise ImapError(f"server gave no UIDVALIDITY for {folder!r}")
        uidnext = _UIDNEXT.search(data)
        return FolderState(int(validity.group(1)), int(uidnext.group(1)) if uidnext else None)

    async def uids_since(self, day: date) -> list[int]:
        since = f"{day.day:02d}-{_MONTHS[day.month - 1]}-{day.year}"
        response = await self._require().uid_search("SINCE", since, charset=None)
        if response.result != "OK":
            raise ImapError(f"SEARCH failed: {_text(response.lines)}")
        uids: list[int] = []
        # aioimaplib strips the "* SEARCH" prefix: the untagged line is just "1 2 3"
        for line in response.lines[:-1]:
            tokens = bytes(line).split()
            if tokens and tokens[0] == b"SEARCH":
                tokens = tokens[1:]
            if tokens and all(tok.isdigit() for tok in tokens):
                uids.extend(int(tok) for tok in tokens)
        return sorted(uids)

    async def metas_after(self, last_uid: int) -> list[MessageMeta]:
        """Messages with UID > last_uid. `n:*` also returns the highest message when n is
        past the end (RFC 3501 §6.4.8), so UIDs at or below last_uid are dropped here."""
        return [m for m in await self.metas(f"{last_uid + 1}:*") if m.uid > last_uid]

    async def metas(self, uid_set: str) -> list[MessageMeta]:
        response = await self._require().uid("fetch", uid_set, "(UID RFC822.SIZE INTERNALDATE)")
        if response.result != "OK":
            raise ImapError(f"FETCH failed: {_text(response.lines)}")
        out: list[MessageMeta] = []
        for line in response.lines:
            text = bytes(line)
            if not _FETCH_LINE.match(text):
                continue
            uid, size = _UID.search(text), _SIZE.search(text)
            if uid is None:
                continue
            idate = _INTERNALDATE.search(text)
            out.append(
                MessageMeta(
                    uid=int(uid.group(1)),
                    size=int(size.group(1)) if size else 0,
                    internal_date=_internal_date(idate.group(1).decode()) if idate else None,
                )
            )
        return sorted(out, key=lambda m: m.uid)

    async def fetch(self, uid: int, headers_only: bool = False) -> bytes | None:
        """The raw message (PEEK: the user's \\Seen flags stay untouched); None if gone."""
        part = "BODY.PEEK[HEADER]" if headers_only else "BODY.PEEK[]"
        response = await self._require().uid("fetch", str(uid), f"(UID {part})")
        if response.result != "OK":
            raise ImapError(f"FETCH {uid} failed: {_text(response.lines)}")
        lines = response.lines
        for i, line in enumerate(lines):
            if isinstance(line, bytearray | bytes) and _FETCH_LINE.match(bytes(line)):
                uid_match = _UID.search(bytes(line))
                if uid_match and int(uid_match.group(1)) != uid:
                    continue
                if i + 1 < len(lines) and isinstance(lines[i + 1], bytearray):
                    return bytes(lines[i + 1])
        return None  # expunged between the listing and the fetch

    async def append(self, data: bytes, folder: str, flags: str = "(\\Seen)") -> None:
        response = await self._require().append(data, mailbox=encode_folder(folder), flags=flags)
        if response.result != "OK":
            raise ImapError(f"APPEND to {folder!r} failed: {_text(response.lines)}")

    async def idle(self, seconds: float) -> bool:
        """IDLE until the server pushes something or `seconds` pass; True on a push.

        Cancelling leaves the connection mid-IDLE, so it is closed (the next pull
        reconnects)."""
        client = self._require()
        try:
            idle_task = await client.idle_start(timeout=seconds)
            pushed = await client.wait_server_push(timeout=seconds + 5)
            client.idle_done()
            await asyncio.wait_for(idle_task, self._timeout)
        except BaseException:
            await self.close(graceful=False)
            raise
        if pushed == aioimaplib.STOP_WAIT_SERVER_PUSH:
            return False
        return any(b"EXISTS" in bytes(line) or b"RECENT" in bytes(line) for line in pushed)

    async def noop(self) -> None:
        response = await self._require().noop()
        if response.result != "OK":
            raise ImapError(f"NOOP failed: {_text(response.lines)}")


def _text(lines: list[bytes | bytearray]) -> str:
    return " ".join(bytes(line).decode(errors="replace") for line in lines)[:300]


def _internal_date(value: str) -> datetime | None:
    try:
        return datetime.strptime(value, "%d-%b-%Y %H:%M:%S %z").astimezone(UTC)
    except ValueError:
        return None


def encode_folder(name: str) -> str:
    """Folder name as an IMAP quoted string in modified UTF-7 (RFC 3501 §5.1.3):
    Chinese folder names such as 客户来信 are common on 企业邮箱."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            encoded = base64.b64encode("".join(pending).encode("utf-16-be")).decode()
            out.append("&" + encoded.rstrip("=").replace("/", ",") + "-")
            pending.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            pending.append(ch)
    flush()
    quoted = "".join(out).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{quoted}"'
