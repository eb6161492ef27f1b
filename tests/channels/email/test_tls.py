"""TLS to the mail servers: implicit TLS and STARTTLS, certificates verified."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest

from channels.email.adapter import EmailAdapter
from conversations.types import AccountRef, MessageKind, Outbound, Purpose, SendOutcome

from .conftest import Mailbox, account_config, channel_context, read_mailbox


def adapter_for(
    box: Mailbox, tmp_path: Path, adapters: list[EmailAdapter], **overrides: Any
) -> EmailAdapter:
    account = AccountRef(
        id=1,
        kind="email",
        name=box.address,
        config=account_config(box, **overrides),
        secrets={"password": box.password},
    )
    adapter = EmailAdapter(account, channel_context(tmp_path))
    adapters.append(adapter)
    return adapter


async def test_imap_over_implicit_tls_with_a_private_ca(
    new_mailbox: Any, dovecot_server: Any, adapters: list[EmailAdapter], tmp_path: Path
) -> None:
    box = new_mailbox()
    adapter = adapter_for(
        box,
        tmp_path,
        adapters,
        imap_security="ssl",
        imap_port=dovecot_server.imaps_port,
        tls_ca_file=str(dovecot_server.ca_file),
    )

    page = await adapter.pull({})

    assert page.cursor is not None and page.cursor.endswith(":0")


async def test_imap_starttls_upgrades_before_login(
    new_mailbox: Any, dovecot_server: Any, adapters: list[EmailAdapter], tmp_path: Path
) -> None:
    box = new_mailbox()
    adapter = adapter_for(
        box, tmp_path, adapters, imap_security="starttls", tls_ca_file=str(dovecot_server.ca_file)
    )

    page = await adapter.pull({})

    assert page.cursor is not None


async def test_imap_tls_refuses_an_untrusted_certificate(
    new_mailbox: Any, dovecot_server: Any, adapters: list[EmailAdapter], tmp_path: Path
) -> None:
    box = new_mailbox()
    adapter = adapter_for(
        box, tmp_path, adapters, imap_security="ssl", imap_port=dovecot_server.imaps_port
    )

    with pytest.raises(ssl.SSLCertVerificationError):
        await adapter.pull({})


async def test_smtp_starttls_submission_reaches_the_mailbox(
    new_mailbox: Any,
    dovecot_server: Any,
    smtp_tls_server: Any,
    adapters: list[EmailAdapter],
    tmp_path: Path,
) -> None:
    box, customer = new_mailbox(), new_mailbox()
    smtp_tls_server.users[box.user] = box.password
    adapter = adapter_for(
        box,
        tmp_path,
        adapters,
        smtp_port=smtp_tls_server.port,
        smtp_security="starttls",
        tls_ca_file=str(dovecot_server.ca_file),
    )
    out = Outbound(
        key="tls-1",
        account=adapter.account,
        recipient=customer.address,
        kind=MessageKind.TEXT,
        text="加密发送",
        purpose=Purpose.REPLY,
    )

    result = await adapter.send(out)

    assert result.outcome == SendOutcome.SENT
    assert [r.auth_user for r in smtp_tls_server.received_for(customer.address)] == [box.user]
    assert len(await read_mailbox(customer)) == 1


async def test_connection_check_passes_with_good_settings(
    new_mailbox: Any, adapters: list[EmailAdapter], tmp_path: Path
) -> None:
    adapter = adapter_for(new_mailbox(), tmp_path, adapters)

    check = await adapter.check_connection()

    assert check.ok, check.message


async def test_connection_check_explains_a_refused_login(
    new_mailbox: Any, adapters: list[EmailAdapter], tmp_path: Path
) -> None:
    box = new_mailbox()
    wrong = Mailbox(box.user, "not-the-password", box.imap_port, box.smtp_port)
    adapter = adapter_for(wrong, tmp_path, adapters)

    check = await adapter.check_connection()

    assert not check.ok
    assert "授权码" in check.message and check.detail["stage"] == "imap"
    assert "not-the-password" not in check.message
