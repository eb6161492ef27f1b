"""An aiosmtpd SMTP server on loopback that delivers into Dovecot over LMTP.

Mail crmbot sends by SMTP lands in the recipient's Dovecot mailbox (readable over IMAP),
and a "customer" mail submitted here arrives in the bot's mailbox the way a real MTA
delivers it (LMTP adds Return-Path and Delivered-To). Every envelope is also recorded so
tests can count what reached the server.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from .oauth import OAuthServer
from .ports import free_port


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    auth_user: str | None


class LmtpError(Exception):
    pass


async def lmtp_deliver(
    port: int, mail_from: str, rcpt_tos: list[str], data: bytes, host: str = "127.0.0.1"
) -> list[str]:
    """Deliver one message over LMTP (RFC 2033); returns one reply line per recipient."""
    reader, writer = await asyncio.open_connection(host, port)

    async def reply() -> str:
        lines = []
        while True:
            line = (await reader.readline()).decode(errors="replace").rstrip("\r\n")
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                return "\n".join(lines)

    async def command(line: str, expect: str) -> str:
        writer.write(line.encode() + b"\r\n")
        await writer.drain()
        answer = await reply()
        if not answer.startswith(expect):
            raise LmtpError(f"{line!r} -> {answer}")
        return answer

    try:
        greeting = await reply()
        if not greeting.startswith("220"):
            raise LmtpError(greeting)
        await command("LHLO test.local", "250")
        reverse_path = mail_from if mail_from.startswith("<") else f"<{mail_from}>"
        await command(f"MAIL FROM:{reverse_path}", "250")
        for rcpt in rcpt_tos:
            await command(f"RCPT TO:<{rcpt}>", "250")
        await command("DATA", "354")
        body = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        # dot-stuffing (RFC 5321 §4.5.2)
        body = b"\r\n".join(b"." + ln if ln.startswith(b".") else ln for ln in body.split(b"\r\n"))
        writer.write(body + b".\r\n")
        await writer.drain()
        results = [await reply() for _ in rcpt_tos]
        writer.write(b"QUIT\r\n")
        await writer.drain()
    finally:
        writer.close()
    return results


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def auth_XOAUTH2(self, smtp: SMTP, args: list[str]) -> AuthResult:
        """XOAUTH2 (offered only with an OAuth server to check tokens against): a refused
        token gets Google's base64 JSON error challenge, then 535 after the empty reply."""
        oauth = self.server.oauth
        if oauth is None:
            return AuthResult(success=False, handled=False)
        if len(args) > 1:
            blob = args[1]
        else:
            answer = await smtp.challenge_auth("", encode_to_b64=False)
            if not isinstance(answer, bytes):
                return AuthResult(success=False)
            blob = base64.b64encode(answer).decode()
        try:
            fields = base64.b64decode(blob, validate=True).decode().split("\x01")
        except (binascii.Error, UnicodeDecodeError):
            return AuthResult(success=False, handled=False)
        values = dict(f.split("=", 1) for f in fields if "=" in f)
        user, bearer = values.get("user", ""), values.get("auth", "")
        token = bearer.removeprefix("Bearer ")
        with oauth.lock:
            owner = oauth.active.get(token)
        if owner is not None and owner == user:
            return AuthResult(success=True, auth_data=LoginPassword(user.encode(), b""))
        error = json.dumps({"status": "401", "schemes": "bearer", "scope": "mail"})
        await smtp.challenge_auth(error)
        return AuthResult(success=False, handled=False)

    async def handle_DATA(self, smtp: SMTP, session: Session, envelope: Envelope) -> str:
        data = envelope.original_content or b""
        auth = (
            session.auth_data.login.decode()
            if isinstance(session.auth_data, LoginPassword)
            else None
        )
        received = Received(
            mail_from=envelope.mail_from or "",
            rcpt_tos=tuple(envelope.rcpt_tos),
            data=data,
            auth_user=auth,
        )
        with self.server.lock:
            self.server.received.append(received)
        if self.server.reject_with is not None:
            return self.server.reject_with
        if self.server.lmtp_port is None:
            return "250 OK"
        try:
            results = await lmtp_deliver(
                self.server.lmtp_port, envelope.mail_from or "", list(envelope.rcpt_tos), data
            )
        except LmtpError as exc:
            return f"451 4.3.0 delivery into Dovecot failed: {exc}"[:500]
        failed = [r for r in results if not r.startswith("250")]
        return failed[0] if failed else "250 OK delivered"


@dataclass
class SmtpServer:
    """SMTP submission on 127.0.0.1:port; accepts any login listed in `users`."""

    port: int
    lmtp_port: int | None
    users: dict[str, str] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    reject_with: str | None = None  # e.g. "550 mailbox unavailable" to test failures
    tls: ssl.SSLContext | None = None  # STARTTLS offered and required before MAIL
    oauth: OAuthServer | None = None  # XOAUTH2 logins are checked against its tokens
    lock: threading.Lock = field(default_factory=threading.Lock)
    controller: Controller | None = field(default=None, repr=False)

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            user, password = auth_data.login.decode(), auth_data.password.decode()
            if self.users.get(user) == password:
                return AuthResult(success=True, auth_data=auth_data)
        return AuthResult(success=False, handled=False)

    def received_for(self, rcpt: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if rcpt in r.rcpt_tos]

    def start(self) -> None:
        self.controller = Controller(
            _Handler(self),
            hostname="127.0.0.1",
            port=self.port,
            authenticator=self._authenticate,
            auth_required=False,
            auth_require_tls=False,
            data_size_limit=60 * 1024 * 1024,
            tls_context=self.tls,
            require_starttls=self.tls is not None,
        )
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


def start(
    lmtp_port: int | None,
    tls_cert: tuple[Path, Path] | None = None,
    oauth: OAuthServer | None = None,
) -> SmtpServer:
    """Start on a free port; with `tls_cert` (cert, key) the server requires STARTTLS;
    with `oauth` it also accepts XOAUTH2 logins bearing that server's access tokens."""
    tls = None
    if tls_cert is not None:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(*tls_cert)
    server = SmtpServer(port=free_port(), lmtp_port=lmtp_port, tls=tls, oauth=oauth)
    server.start()
    return server
