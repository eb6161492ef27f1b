"""OAuth 2.0 mailboxes: token refresh at a configured endpoint, XOAUTH2 to a real Dovecot
(oauth2 passdb asking our loopback introspection endpoint) and to the SMTP server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from channels.email.adapter import EmailAdapter
from channels.email.config_check import mailbox_config
from channels.email.errors import EmailConfigError, ImapError, OAuthError, send_result_for
from channels.email.oauth import OAuthConfig, TokenSource, xoauth2_initial_response
from channels.state import MemoryState
from conversations.db import Database
from conversations.types import AccountRef, MessageKind, Outbound, Purpose, SendOutcome
from tests.servers.oauth import Grant, OAuthServer
from tests.servers.smtp import SmtpServer

from .conftest import Mailbox, channel_context, create_account, deliver, read_mailbox
from .test_mailbox_e2e import customer_mail, drain, messages


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def token_source(
    server: OAuthServer, grant: Grant, http: aiohttp.ClientSession, state: Any = None
) -> TokenSource:
    config = OAuthConfig(
        token_url=server.token_url,
        client_id=grant.client_id,
        client_secret=grant.client_secret,
        refresh_token=server.refresh_token_of(grant),
        scope="https://mail.google.com/",
    )
    return TokenSource(1, config, http, state or MemoryState())


def oauth_settings(server: OAuthServer, grant: Grant) -> tuple[dict[str, Any], dict[str, str]]:
    config = {
        "auth": "oauth2",
        "oauth_token_url": server.token_url,
        "oauth_client_id": grant.client_id,
    }
    secrets = {
        "oauth_client_secret": grant.client_secret,
        "oauth_refresh_token": server.refresh_token_of(grant),
        "unsubscribe_key": "ab" * 32,
    }
    return config, secrets


# ---------------------------------------------------------------- the SASL string


def test_xoauth2_string_matches_googles_documented_example() -> None:
    # developers.google.com/gmail/imap/xoauth2-protocol, "SASL XOAUTH2 client response"
    assert xoauth2_initial_response(
        "someuser@example.com", "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"
    ) == (
        "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNr"
        "QmhkSFJoZG1semRHRXVZMjl0Q2cBAQ=="
    )


# ---------------------------------------------------------------- settings


def account(config: dict[str, Any], secrets: dict[str, str]) -> AccountRef:
    base = {"address": "sales@example.com", "imap_host": "imap.x.test", "smtp_host": "smtp.x.test"}
    return AccountRef(1, "email", "sales", {**base, **config}, secrets)


def test_oauth_mailbox_needs_no_app_password() -> None:
    cfg = mailbox_config(
        account(
            {"auth": "oauth2", "oauth_provider": "google", "oauth_client_id": "id"},
            {"oauth_refresh_token": "rt", "oauth_client_secret": "s"},
        )
    )

    assert cfg.oauth is not None and cfg.imap.oauth and cfg.smtp.oauth
    assert cfg.oauth.token_url == "https://oauth2.googleapis.com/token"


def test_microsoft_preset_puts_the_tenant_in_the_token_url() -> None:
    cfg = mailbox_config(
        account(
            {
                "auth": "oauth2",
                "oauth_provider": "microsoft",
                "oauth_tenant": "contoso.onmicrosoft.com",
                "oauth_client_id": "id",
            },
            {"oauth_refresh_token": "rt"},
        )
    )

    assert cfg.oauth is not None
    assert cfg.oauth.token_url == (
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
    )
    assert cfg.oauth.scope is not None and "offline_access" in cfg.oauth.scope
    assert cfg.oauth.client_secret is None


def test_plain_http_token_endpoint_off_loopback_is_refused() -> None:
    with pytest.raises(EmailConfigError) as caught:
        mailbox_config(
            account(
                {"auth": "oauth2", "oauth_token_url": "http://idp.example.com/token"},
                {"oauth_refresh_token": "rt"},
            )
        )

    assert any(p.startswith("oauth_token_url") for p in caught.value.problems)
    assert any(p.startswith("oauth_client_id") for p in caught.value.problems)
    assert not any("password" in p for p in caught.value.problems)


def test_oauth_without_refresh_token_is_refused() -> None:
    with pytest.raises(EmailConfigError, match="oauth_refresh_token"):
        mailbox_config(account({"auth": "oauth2", "oauth_provider": "google"}, {}))


# ---------------------------------------------------------------- token refresh


async def test_access_token_is_fetched_once_and_cached(
    oauth_server: OAuthServer, http: aiohttp.ClientSession
) -> None:
    grant = oauth_server.issue("someone")
    tokens = token_source(oauth_server, grant, http)
    before = oauth_server.refreshes

    first = await tokens.access_token()
    second = await tokens.access_token()

    assert first == second
    assert oauth_server.refreshes == before + 1
    assert oauth_server.active[first] == "someone"


async def test_forced_refresh_replaces_the_cached_token(
    oauth_server: OAuthServer, http: aiohttp.ClientSession
) -> None:
    tokens = token_source(oauth_server, oauth_server.issue("someone"), http)
    first = await tokens.access_token()

    second = await tokens.access_token(refresh=True)

    assert second != first
    assert await tokens.access_token() == second


async def test_rotated_refresh_token_is_used_for_the_next_refresh(
    oauth_server: OAuthServer, http: aiohttp.ClientSession
) -> None:
    grant = oauth_server.issue("someone", rotate=True)
    tokens = token_source(oauth_server, grant, http)
    await tokens.access_token()

    # the configured token was spent by the rotation; only the remembered one works now
    again = await tokens.access_token(refresh=True)

    assert oauth_server.active[again] == "someone"


async def test_revoked_refresh_token_is_a_permanent_error(
    oauth_server: OAuthServer, http: aiohttp.ClientSession
) -> None:
    grant = oauth_server.issue("someone")
    tokens = token_source(oauth_server, grant, http)
    oauth_server.revoke_grant(grant)

    with pytest.raises(OAuthError, match="invalid_grant") as caught:
        await tokens.access_token()

    assert caught.value.permanent


async def test_unreachable_token_endpoint_is_a_transient_error(
    http: aiohttp.ClientSession,
) -> None:
    from tests.servers.ports import free_port

    config = OAuthConfig(f"http://127.0.0.1:{free_port()}/token", "id", None, "rt", None)
    tokens = TokenSource(1, config, http, MemoryState())

    with pytest.raises(OAuthError) as caught:
        await tokens.access_token()

    assert not caught.value.permanent


def test_oauth_failure_on_send_is_retried_later() -> None:
    result = send_result_for(OAuthError("invalid_grant", permanent=True))

    assert result.outcome == SendOutcome.RETRY
    assert result.error_code == "email.oauth_reauthorise"


# ---------------------------------------------------------------- real servers


async def oauth_adapter(
    db: Database,
    box: Mailbox,
    oauth_server: OAuthServer,
    http: aiohttp.ClientSession,
    tmp_path: Path,
    adapters: list[EmailAdapter],
) -> tuple[AccountRef, EmailAdapter]:
    grant = oauth_server.issue(box.user)
    config, secrets = oauth_settings(oauth_server, grant)
    made = await create_account(db, box, **config)
    ref = AccountRef(made.id, made.kind, made.name, made.config, secrets)
    adapter = EmailAdapter(ref, channel_context(tmp_path, http=http))
    adapters.append(adapter)
    return ref, adapter


async def test_oauth_mailbox_imports_mail_over_imap_xoauth2(
    db: Database,
    new_mailbox: Any,
    oauth_server: OAuthServer,
    http: aiohttp.ClientSession,
    adapters: list[EmailAdapter],
    tmp_path: Path,
) -> None:
    box = new_mailbox()
    ref, adapter = await oauth_adapter(db, box, oauth_server, http, tmp_path, adapters)
    mail = customer_mail("buyer@c.test", box.address, "询价", "多少钱？", Message_ID="<o1@c.test>")
    await deliver("buyer@c.test", box.address, mail, box.smtp_port)

    result = await drain(db, ref, adapter)

    assert len(result.message_ids) == 1
    [stored] = await messages(db, ref.id)
    assert stored.text == "多少钱？"


async def test_access_token_revoked_early_is_refreshed_and_the_login_retried(
    db: Database,
    new_mailbox: Any,
    oauth_server: OAuthServer,
    http: aiohttp.ClientSession,
    adapters: list[EmailAdapter],
    tmp_path: Path,
) -> None:
    box = new_mailbox()
    ref, adapter = await oauth_adapter(db, box, oauth_server, http, tmp_path, adapters)
    check = await adapter.check_connection()
    assert check.ok, check.message
    oauth_server.revoke_access_tokens()  # the cached token is now refused by Dovecot
    before = oauth_server.refreshes

    again = await adapter.check_connection()

    assert again.ok, again.message
    assert oauth_server.refreshes >= before + 1


def revoke_consent(oauth_server: OAuthServer, ref: Any) -> None:
    """The mailbox owner withdraws the app's consent: its refresh token stops working."""
    with oauth_server.lock:
        grant = oauth_server.grants[ref.secrets["oauth_refresh_token"]]
    oauth_server.revoke_grant(grant)


async def test_oauth_login_with_a_revoked_grant_reports_reauthorisation(
    db: Database,
    new_mailbox: Any,
    oauth_server: OAuthServer,
    http: aiohttp.ClientSession,
    adapters: list[EmailAdapter],
    tmp_path: Path,
) -> None:
    box = new_mailbox()
    ref, adapter = await oauth_adapter(db, box, oauth_server, http, tmp_path, adapters)
    revoke_consent(oauth_server, ref)

    with pytest.raises(OAuthError) as caught:
        await drain(db, ref, adapter)

    assert caught.value.translation_key == "email.oauth_reauthorise"


async def test_token_for_another_mailbox_user_is_refused_by_dovecot(
    db: Database,
    new_mailbox: Any,
    oauth_server: OAuthServer,
    http: aiohttp.ClientSession,
    adapters: list[EmailAdapter],
    tmp_path: Path,
) -> None:
    box, other = new_mailbox(), new_mailbox()
    grant = oauth_server.issue(other.user)  # consent given by a different mailbox
    config, secrets = oauth_settings(oauth_server, grant)
    made = await create_account(db, box, **config)
    adapter = EmailAdapter(
        AccountRef(made.id, made.kind, made.name, made.config, secrets),
        channel_context(tmp_path, http=http),
    )
    adapters.append(adapter)

    with pytest.raises(ImapError, match="XOAUTH2 login refused"):
        await drain(db, made, adapter)


async def test_oauth_mailbox_sends_through_smtp_xoauth2(
    db: Database,
    new_mailbox: Any,
    oauth_server: OAuthServer,
    http: aiohttp.ClientSession,
    adapters: list[EmailAdapter],
    tmp_path: Path,
    smtp_server: SmtpServer,
) -> None:
    box, customer = new_mailbox(), new_mailbox()
    ref, adapter = await oauth_adapter(db, box, oauth_server, http, tmp_path, adapters)
    out = Outbound(
        key="oauth-send-1",
        account=ref,
        recipient=customer.address,
        kind=MessageKind.TEXT,
        text="您好",
        purpose=Purpose.REPLY,
    )

    result = await adapter.send(out)

    assert result.outcome == SendOutcome.SENT, result.reason
    [got] = smtp_server.received_for(customer.address)
    assert got.auth_user == box.user
    assert len(await read_mailbox(customer)) == 1


async def test_smtp_refusing_the_cached_token_gets_a_fresh_one(
    db: Database,
    new_mailbox: Any,
    oauth_server: OAuthServer,
    http: aiohttp.ClientSession,
    adapters: list[EmailAdapter],
    tmp_path: Path,
    smtp_server: SmtpServer,
) -> None:
    box, customer = new_mailbox(), new_mailbox()
    ref, adapter = await oauth_adapter(db, box, oauth_server, http, tmp_path, adapters)
    first = Outbound("oauth-a", ref, customer.address, MessageKind.TEXT, "一", Purpose.REPLY)
    assert (await adapter.send(first)).outcome == SendOutcome.SENT
    oauth_server.revoke_access_tokens()

    second = Outbound("oauth-b", ref, customer.address, MessageKind.TEXT, "二", Purpose.REPLY)
    result = await adapter.send(second)

    assert result.outcome == SendOutcome.SENT, result.reason
    assert len(smtp_server.received_for(customer.address)) == 2


async def test_connection_check_names_reauthorisation_when_consent_was_withdrawn(
    db: Database,
    new_mailbox: Any,
    oauth_server: OAuthServer,
    http: aiohttp.ClientSession,
    adapters: list[EmailAdapter],
    tmp_path: Path,
) -> None:
    box = new_mailbox()
    ref, adapter = await oauth_adapter(db, box, oauth_server, http, tmp_path, adapters)
    revoke_consent(oauth_server, ref)

    check = await adapter.check_connection()

    assert not check.ok
    assert "重新授权" in check.message and "app password" not in check.message
