"""Real mail servers for the email channel: Dovecot (IMAP + LMTP) and aiosmtpd relaying into
it, started once per session; each test gets fresh mailboxes (new Dovecot users)."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any, cast

import aiosmtplib
import pytest

from channels.base import ChannelContext
from channels.email.adapter import EmailAdapter
from channels.email.config_check import ServerConfig
from channels.email.imap_source import ImapConnection
from channels.media import MediaStore
from channels.state import MemoryState
from conversations.db import Database
from conversations.models import ChannelAccount
from conversations.types import AccountRef
from tests.servers import dovecot, oauth, smtp

FIXTURES = Path(__file__).parent / "fixtures"
DOMAIN = "example.test"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@pytest.fixture(scope="session")
def oauth_server() -> Iterator[oauth.OAuthServer]:
    """Token + introspection endpoints (RFC 6749 / RFC 7662) on loopback."""
    server = oauth.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def dovecot_server(oauth_server: oauth.OAuthServer) -> Iterator[dovecot.DovecotServer]:
    reason = dovecot.available()
    if reason:
        pytest.skip(reason)
    # not under pytest's basetemp: any pytest session starting on the machine resets that
    # tree to 0700, and Dovecot's unprivileged processes must traverse into the maildirs
    root = Path(tempfile.mkdtemp(prefix="crmbot-dovecot-"))
    root.chmod(0o755)
    server = dovecot.start(root / "dovecot", oauth_introspection_url=oauth_server.introspection_url)
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def smtp_server(
    dovecot_server: dovecot.DovecotServer, oauth_server: oauth.OAuthServer
) -> Iterator[smtp.SmtpServer]:
    server = smtp.start(dovecot_server.lmtp_port, oauth=oauth_server)
    yield server
    server.stop()


@dataclass(frozen=True)
class Mailbox:
    user: str
    password: str
    imap_port: int
    smtp_port: int

    @property
    def address(self) -> str:
        return f"{self.user}@{DOMAIN}"


@pytest.fixture
def new_mailbox(dovecot_server: dovecot.DovecotServer, smtp_server: smtp.SmtpServer) -> Any:
    """Factory: a fresh Dovecot user (own maildir) that may also log in to the SMTP server."""

    def make() -> Mailbox:
        user, password = dovecot_server.take_user()
        smtp_server.users[user] = password
        return Mailbox(user, password, dovecot_server.imap_port, smtp_server.port)

    return make


def account_config(box: Mailbox, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "address": box.address,
        "display_name": "销售部 Sales",
        "imap_host": "127.0.0.1",
        "imap_port": box.imap_port,
        "imap_security": "none",
        "imap_username": box.user,
        "smtp_host": "127.0.0.1",
        "smtp_port": box.smtp_port,
        "smtp_security": "none",
        "smtp_username": box.user,
        "timeout_seconds": 10,
    }
    config.update(overrides)
    return config


def channel_context(
    tmp_path: Path, media_limit: int = 20 * 1024 * 1024, http: Any = None
) -> ChannelContext:
    return ChannelContext(
        http=cast(Any, http),  # only OAuth token refreshes use HTTP
        state=MemoryState(),
        media=MediaStore(tmp_path / "media", max_bytes=media_limit),
        public_url="https://crm.example.test",
    )


async def create_account(db: Database, box: Mailbox, **overrides: Any) -> AccountRef:
    """An email ChannelAccount row for `box`, and the AccountRef the lead would build."""
    config = account_config(box, **overrides)
    async with db.transaction() as session:
        row = ChannelAccount(
            kind="email",
            name=box.address,
            config=config,
            secrets={},
            callback_token=uuid.uuid4().hex,
        )
        session.add(row)
        await session.flush()
        account_id = row.id
    return AccountRef(
        id=account_id,
        kind="email",
        name=box.address,
        config=config,
        secrets={"password": box.password, "unsubscribe_key": "ab" * 32},
    )


@pytest.fixture
async def adapters() -> AsyncIterator[list[EmailAdapter]]:
    """Collects adapters a test builds and closes their IMAP connections afterwards."""
    made: list[EmailAdapter] = []
    yield made
    for adapter in made:
        await adapter.aclose()


async def deliver(box_from: str, to: str, message: EmailMessage | bytes, smtp_port: int) -> None:
    """A "customer" mail, submitted by real SMTP and delivered into Dovecot over LMTP."""
    data = message if isinstance(message, bytes) else bytes(message)
    # the low-level client: bounces come from the null sender "<>", which send() refuses
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=smtp_port, start_tls=False) as client:
        await client.sendmail(box_from, [to], data)


async def _connect(box: Mailbox) -> ImapConnection:
    conn = ImapConnection(
        ServerConfig("127.0.0.1", box.imap_port, "none", box.user, box.password), timeout=10
    )
    await conn.connect()
    return conn


async def read_mailbox(box: Mailbox, folder: str = "INBOX") -> list[bytes]:
    """Every message in a folder, read back over IMAP."""
    conn = await _connect(box)
    try:
        await conn.select(folder)
        return await conn.fetch_all()
    finally:
        await conn.close()


async def append(box: Mailbox, data: bytes, folder: str = "INBOX", date: Any = None) -> None:
    """Put exact bytes into a mailbox (broken charsets survive; INTERNALDATE settable)."""
    conn = await _connect(box)
    try:
        await conn.append(data, folder, flags="()", internal_date=date)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def smtp_tls_server(dovecot_server: dovecot.DovecotServer) -> Iterator[smtp.SmtpServer]:
    """An SMTP server that requires STARTTLS, with Dovecot's self-signed certificate."""
    server = smtp.start(
        dovecot_server.lmtp_port, tls_cert=(dovecot_server.ca_file, dovecot_server.root / "key.pem")
    )
    yield server
    server.stop()
