"""A small asyncio IMAP4rev1 client (RFC 3501): the commands crmbot needs, nothing more.

Why not a library: the maintained asyncio client (aioimaplib) is GPL-3.0-only, crmbot is
MIT, and it leaves response parsing to the caller anyway. What is needed here is framing
(tagged commands, untagged responses, {n} literals), STARTTLS, IDLE and APPEND.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from dataclasses import dataclass, field

from .errors import ImapError

_LITERAL = re.compile(rb"\{(\d+)\+?\}\r\n$")
_CODE_CAPABILITY = re.compile(rb"\[CAPABILITY ([^\]]*)\]", re.I)
MAX_LINE = 16 * 1024 * 1024  # a SEARCH over a big mailbox is one long line
_CHUNK = 256 * 1024
# Timeouts use asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
# cancellation that races with the result, which left a stopped poller idling for minutes.


@dataclass
class Untagged:
    """One untagged response: its text (literals shown as {n}) and the literal bodies."""

    text: bytes
    literals: list[bytes] = field(default_factory=list)


@dataclass
class Response:
    status: str  # OK | NO | BAD
    text: str
    untagged: list[Untagged]

    @property
    def ok(self) -> bool:
        return self.status == "OK"


def quote(value: str) -> str:
    """An IMAP quoted string; callers pass non-ASCII or CR/LF values as literals instead."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _needs_literal(value: str) -> bool:
    return not value.isascii() or "\r" in value or "\n" in value or "\x00" in value


class ImapClient:
    """One connection. Not safe for concurrent commands: the poller drives it serially."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.capabilities: set[str] = set()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._tag = 0
        self._host = ""

    # ------------------------------------------------------------------ connection

    async def open(self, host: str, port: int, tls: ssl.SSLContext | None) -> None:
        self._host = host
        async with asyncio.timeout(self.timeout):
            self._reader, self._writer = await asyncio.open_connection(
                host, port, ssl=tls, server_hostname=host if tls else None, limit=MAX_LINE
            )
        greeting = await self._read_item()
        if not greeting.text.startswith((b"* OK", b"* PREAUTH")):
            raise ImapError(f"unexpected IMAP greeting: {greeting.text[:200]!r}")
        self._note_capabilities(greeting.text)
        if not self.capabilities:
            await self.refresh_capabilities()

    async def starttls(self, tls: ssl.SSLContext) -> None:
        if "STARTTLS" not in self.capabilities:
            raise ImapError("server does not offer STARTTLS", translation_key="email.no_starttls")
        await self.check("STARTTLS")
        assert self._writer is not None
        await self._writer.start_tls(tls, server_hostname=self._host)
        # RFC 3501 §6.2.1: capabilities learned before TLS must be discarded
        self.capabilities = set()
        await self.refresh_capabilities()

    async def refresh_capabilities(self) -> None:
        response = await self.check("CAPABILITY")
        for item in response.untagged:
            if item.text.upper().startswith(b"* CAPABILITY "):
                self.capabilities = set(item.text[13:].decode(errors="replace").upper().split())

    def _note_capabilities(self, text: bytes) -> None:
        match = _CODE_CAPABILITY.search(text)
        if match:
            self.capabilities = set(match.group(1).decode(errors="replace").upper().split())

    async def close(self) -> None:
        """Drop the socket (no LOGOUT: use `logout` for a polite goodbye)."""
        writer, self._writer, self._reader = self._writer, None, None
        if writer is None:
            return
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
            async with asyncio.timeout(2):
                await writer.wait_closed()

    async def logout(self) -> None:
        with contextlib.suppress(
            ImapError, OSError, asyncio.TimeoutError, asyncio.IncompleteReadError
        ):
            await self.command("LOGOUT")
        await self.close()

    @property
    def is_open(self) -> bool:
        return self._writer is not None

    # ------------------------------------------------------------------ commands

    async def login(self, user: str, password: str) -> None:
        response = await self.command("LOGIN", _arg(user), _arg(password))
        if not response.ok:
            raise ImapError(
                f"IMAP login refused for {user}: {response.text}",
                translation_key="email.imap_login_refused",
            )
        self._note_capabilities(response.text.encode())

    async def authenticate(self, mechanism: str, initial_response: str) -> Response:
        """AUTHENTICATE with a one-step SASL mechanism (XOAUTH2); the response as sent,
        not raised, so the caller can refresh a refused token and try again."""
        writer = self._require_writer()
        self._tag += 1
        tag = f"C{self._tag:04d}"
        if "SASL-IR" in self.capabilities:  # RFC 4959: the response rides on the command
            writer.write(f"{tag} AUTHENTICATE {mechanism} {initial_response}\r\n".encode())
        else:
            writer.write(f"{tag} AUTHENTICATE {mechanism}\r\n".encode())
            await writer.drain()
            await self._expect_continuation()
            writer.write(initial_response.encode() + b"\r\n")
        await writer.drain()
        prefix = tag.encode() + b" "
        untagged: list[Untagged] = []
        while True:
            item = await self._read_item()
            if item.text.startswith(b"+"):
                # XOAUTH2 failure: a base64 JSON error as a challenge; the client answers
                # with an empty line and the server then says NO (Google's protocol page)
                writer.write(b"\r\n")
                await writer.drain()
                continue
            if item.text.startswith(prefix):
                rest = item.text[len(prefix) :].decode(errors="replace")
                status, _, text = rest.partition(" ")
                response = Response(status.upper(), text, untagged)
                if response.ok:
                    self._note_capabilities(text.encode())
                return response
            untagged.append(item)

    async def check(self, *args: str | bytes) -> Response:
        """Run a command; raise ImapError unless the server answers OK."""
        response = await self.command(*args)
        if not response.ok:
            name = args[0] if isinstance(args[0], str) else "command"
            raise ImapError(f"{name} failed: {response.status} {response.text}"[:300])
        return response

    async def command(self, *args: str | bytes) -> Response:
        """Send one tagged command (bytes arguments go as literals) and read its response."""
        writer = self._require_writer()
        self._tag += 1
        tag = f"C{self._tag:04d}"
        line = tag
        for arg in args:
            if isinstance(arg, bytes):
                writer.write(f"{line} {{{len(arg)}}}\r\n".encode())
                await writer.drain()
                await self._expect_continuation()
                writer.write(arg)
                line = ""
            else:
                line = f"{line} {arg}" if line else arg
        writer.write(line.encode() + b"\r\n")
        await writer.drain()
        return await self._read_until_tagged(tag)

    async def idle(self, seconds: float) -> bool:
        """IDLE (RFC 2177) until the server reports something or `seconds` pass; True on a
        push. The push is only a wake-up signal: the caller re-syncs by UID."""
        if "IDLE" not in self.capabilities:
            raise ImapError("server does not support IDLE")
        writer = self._require_writer()
        self._tag += 1
        tag = f"C{self._tag:04d}"
        writer.write(f"{tag} IDLE\r\n".encode())
        await writer.drain()
        await self._expect_continuation()
        reader = self._require_reader()
        pushed = False
        try:
            # readuntil consumes nothing when cancelled, so a timeout never splits a line
            async with asyncio.timeout(seconds):
                line = await reader.readuntil(b"\r\n")
            pushed = line.startswith(b"* ")
        except TimeoutError:
            pass
        writer.write(b"DONE\r\n")
        await writer.drain()
        await self._read_until_tagged(tag)
        return pushed

    # ------------------------------------------------------------------ framing

    def _require_writer(self) -> asyncio.StreamWriter:
        if self._writer is None:
            raise ImapError("IMAP connection is closed")
        return self._writer

    def _require_reader(self) -> asyncio.StreamReader:
        if self._reader is None:
            raise ImapError("IMAP connection is closed")
        return self._reader

    async def _expect_continuation(self) -> None:
        item = await self._read_item()
        if not item.text.startswith(b"+"):
            raise ImapError(f"server refused: {item.text[:200]!r}")

    async def _read_until_tagged(self, tag: str) -> Response:
        untagged: list[Untagged] = []
        prefix = tag.encode() + b" "
        while True:
            item = await self._read_item()
            if item.text.startswith(prefix):
                rest = item.text[len(prefix) :].decode(errors="replace")
                status, _, text = rest.partition(" ")
                return Response(status.upper(), text, untagged)
            untagged.append(item)

    async def _read_item(self) -> Untagged:
        """One server response line, with any {n} literals it carries."""
        reader = self._require_reader()
        text = b""
        literals: list[bytes] = []
        while True:
            try:
                async with asyncio.timeout(self.timeout):
                    line = await reader.readuntil(b"\r\n")
            except asyncio.IncompleteReadError as exc:
                raise ImapError("the IMAP server closed the connection") from exc
            except asyncio.LimitOverrunError as exc:
                raise ImapError("IMAP response line too long") from exc
            match = _LITERAL.search(line)
            if match is None:
                return Untagged(text + line[:-2], literals)
            text += line[:-2]
            literals.append(await self._read_literal(int(match.group(1))))

    async def _read_literal(self, size: int) -> bytes:
        # chunked so the timeout is per chunk (a 25 MB mail over a slow link is fine)
        reader = self._require_reader()
        chunks: list[bytes] = []
        remaining = size
        while remaining:
            try:
                async with asyncio.timeout(self.timeout):
                    chunk = await reader.readexactly(min(_CHUNK, remaining))
            except asyncio.IncompleteReadError as exc:
                raise ImapError("the IMAP server closed the connection mid-message") from exc
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)


def _arg(value: str) -> str | bytes:
    return value.encode() if _needs_literal(value) else quote(value)
