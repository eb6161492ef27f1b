"""An email account's settings, validated: IMAP in, SMTP out, app passwords in secrets.

Account config (the console form) uses flat keys; secrets hold `imap_password` and
`smtp_password` (or one `password` for both), already decrypted by the caller.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from conversations.types import AccountRef

from .errors import EmailConfigError
from .oauth import PRESETS, OAuthConfig

SECURITY = ("ssl", "starttls", "none")
AUTH_METHODS = ("password", "oauth2")
IDLE_RENEW_MAX = 25 * 60  # research note §3a: servers drop IDLE after ≥ 29 min; Gmail sooner
_ADDRESS = re.compile(r"^[^@\s<>\"',;]+@[^@\s<>\"',;]+\.[^@\s<>\"',;]+$")


@dataclass(frozen=True)
class ServerConfig:
    host: str
    port: int
    security: str  # ssl | starttls | none
    username: str
    password: str
    ca_file: str | None = None  # private CA for a self-hosted mail server; None = system CAs
    oauth: bool = False  # log in with XOAUTH2 and an access token instead of `password`

    def tls_context(self) -> ssl.SSLContext:
        """Certificate-verifying TLS context (system CAs, or the configured private CA)."""
        return ssl.create_default_context(cafile=self.ca_file)


@dataclass(frozen=True)
class MailboxConfig:
    address: str
    display_name: str | None
    imap: ServerConfig
    smtp: ServerConfig
    folders: tuple[str, ...]
    backfill_days: int
    max_message_bytes: int  # larger mails are imported with headers only
    batch_size: int
    idle_renew_seconds: float
    poll_seconds: float
    timeout: float
    message_id_domain: str
    auto_replies_per_hour: float
    unsubscribe_url: str | None  # https base for List-Unsubscribe; token appended
    unsubscribe_mailto: str | None
    # Exmail/163/QQ do not file SMTP-submitted mail under "Sent" (Gmail does): with
    # sent_folder set we APPEND our copy there, and a retry looks there before resending
    sent_folder: str | None = None
    save_sent: bool = True
    oauth: OAuthConfig | None = None  # set when auth = "oauth2"


def is_address(value: str) -> bool:
    return bool(_ADDRESS.match(value)) and len(value) <= 254


def mailbox_config(account: AccountRef, public_url: str = "") -> MailboxConfig:
    """Validate an email account; raises EmailConfigError listing every problem."""
    c: Mapping[str, Any] = account.config
    s: Mapping[str, str] = account.secrets
    problems: list[str] = []
    address = str(c.get("address", "")).strip().lower()
    if not is_address(address):
        problems.append(f"address: {address!r} is not an email address")
    auth = str(c.get("auth") or "password").lower()
    if auth not in AUTH_METHODS:
        problems.append(f"auth: one of {', '.join(AUTH_METHODS)}, not {auth!r}")
    oauth = _oauth_config(c, s, problems) if auth == "oauth2" else None

    def server(prefix: str, default_ports: Mapping[str, int]) -> ServerConfig:
        host = str(c.get(f"{prefix}_host", "")).strip()
        if not host:
            problems.append(f"{prefix}_host: required (e.g. {prefix}.exmail.qq.com)")
        security = str(c.get(f"{prefix}_security", "ssl")).lower()
        if security not in SECURITY:
            problems.append(f"{prefix}_security: one of {', '.join(SECURITY)}, not {security!r}")
            security = "ssl"
        port = _int(c.get(f"{prefix}_port", default_ports[security]), f"{prefix}_port", problems)
        if not 0 < port < 65536:
            problems.append(f"{prefix}_port: {port} is not a TCP port")
        password = s.get(f"{prefix}_password") or s.get("password") or ""
        if not password and auth != "oauth2":
            problems.append(f"secrets.{prefix}_password: the app password (授权码) is required")
        return ServerConfig(
            host=host,
            port=port,
            security=security,
            username=str(c.get(f"{prefix}_username") or address),
            password=password,
            ca_file=str(c["tls_ca_file"]) if c.get("tls_ca_file") else None,
            oauth=auth == "oauth2",
        )

    imap = server("imap", {"ssl": 993, "starttls": 143, "none": 143})
    smtp = server("smtp", {"ssl": 465, "starttls": 587, "none": 25})
    folders = c.get("folders") or ["INBOX"]
    if not isinstance(folders, list | tuple) or not all(isinstance(f, str) and f for f in folders):
        problems.append('folders: a list of folder names, e.g. ["INBOX"]')
        folders = ["INBOX"]
    idle_renew = float(
        _int(c.get("idle_renew_seconds", IDLE_RENEW_MAX), "idle_renew_seconds", problems)
    )
    if not 30 <= idle_renew <= IDLE_RENEW_MAX:
        problems.append(f"idle_renew_seconds: between 30 and {IDLE_RENEW_MAX}")
    # RFC 8058 one-click needs https; the console warns when public_url is plain http
    unsubscribe_url = c.get("unsubscribe_url") or (
        f"{public_url.rstrip('/')}/email/unsubscribe" if public_url else None
    )
    if problems:
        raise EmailConfigError(problems)
    return MailboxConfig(
        address=address,
        display_name=str(c["display_name"]) if c.get("display_name") else None,
        imap=imap,
        smtp=smtp,
        folders=tuple(folders),
        backfill_days=_int(c.get("backfill_days", 7), "backfill_days", problems),
        max_message_bytes=_int(
            c.get("max_message_bytes", 40 * 1024 * 1024), "max_message_bytes", problems
        ),
        batch_size=max(1, _int(c.get("batch_size", 25), "batch_size", problems)),
        idle_renew_seconds=idle_renew,
        poll_seconds=float(_int(c.get("poll_seconds", 60), "poll_seconds", problems)),
        timeout=float(_int(c.get("timeout_seconds", 30), "timeout_seconds", problems)),
        message_id_domain=str(c.get("message_id_domain") or address.split("@", 1)[-1]),
        auto_replies_per_hour=float(c.get("auto_replies_per_hour", 3)),
        unsubscribe_url=str(unsubscribe_url) if unsubscribe_url else None,
        unsubscribe_mailto=str(c.get("unsubscribe_mailto") or address),
        sent_folder=str(c["sent_folder"]) if c.get("sent_folder") else None,
        save_sent=bool(c.get("save_sent", True)),
        oauth=oauth,
    )


def _oauth_config(
    c: Mapping[str, Any], s: Mapping[str, str], problems: list[str]
) -> OAuthConfig | None:
    """auth = "oauth2": a preset (google / microsoft) or an explicit token endpoint."""
    before = len(problems)
    provider = str(c.get("oauth_provider") or "").lower()
    preset = PRESETS.get(provider, {})
    if provider and not preset:
        problems.append(f"oauth_provider: one of {', '.join(PRESETS)}, not {provider!r}")
    token_url = str(c.get("oauth_token_url") or preset.get("token_url", "")).replace(
        "{tenant}", str(c.get("oauth_tenant") or "organizations")
    )
    parts = urlsplit(token_url)
    loopback = parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")
    if not (parts.scheme == "https" and parts.hostname) and not loopback:
        # the refresh token and client secret travel in this request
        problems.append("oauth_token_url: an https:// token endpoint (or oauth_provider)")
    client_id = str(c.get("oauth_client_id") or "")
    if not client_id:
        problems.append("oauth_client_id: the application (client) id registered for crmbot")
    refresh_token = s.get("oauth_refresh_token") or ""
    if not refresh_token:
        problems.append("secrets.oauth_refresh_token: the refresh token from the consent step")
    scope = c.get("oauth_scope") or preset.get("scope")
    if len(problems) > before:
        return None
    return OAuthConfig(
        token_url=token_url,
        client_id=client_id,
        client_secret=s.get("oauth_client_secret") or None,
        refresh_token=refresh_token,
        scope=str(scope) if scope else None,
    )


def _int(value: Any, name: str, problems: list[str]) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        problems.append(f"{name}: expected a whole number, got {value!r}")
        return 0
