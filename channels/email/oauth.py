"""OAuth 2.0 for mailboxes that refuse app passwords (Microsoft 365, Gmail Workspace).

The operator registers crmbot as an app with the provider, consents once, and stores the
refresh token in the account's secrets. We trade it for short-lived access tokens at the
configured token endpoint (RFC 6749 §6) and log in to IMAP and SMTP with the XOAUTH2 SASL
mechanism (Google's "XOAUTH2 protocol" page; Microsoft's "Authenticate an IMAP, POP or
SMTP connection using OAuth" uses the same string).
"""

from __future__ import annotations

import base64
import hashlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp

from .errors import OAuthError

if TYPE_CHECKING:
    from channels.state import SharedState

log = logging.getLogger(__name__)

# Refresh a little before the provider's expiry: a token that expires between our check
# and the server's would fail a login for nothing
EXPIRY_MARGIN = 300.0
MIN_CACHE_SECONDS = 30.0
ROTATED_TTL = 90 * 24 * 3600.0  # Microsoft refresh tokens live 90 days from their issue

# Token endpoints and scopes of the two providers that require OAuth for IMAP/SMTP
PRESETS: dict[str, dict[str, str]] = {
    "google": {
        "token_url": "https://oauth2.googleapis.com/token",
        "scope": "https://mail.google.com/",
    },
    "microsoft": {
        # {tenant}: the directory id or "organizations"; "common" also works for work accounts
        "token_url": "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token",
        "scope": "https://outlook.office.com/IMAP.AccessAsUser.All "
        "https://outlook.office.com/SMTP.Send offline_access",
    },
}


@dataclass(frozen=True)
class OAuthConfig:
    token_url: str
    client_id: str
    client_secret: str | None  # public clients (Microsoft native apps) have none
    refresh_token: str
    scope: str | None


def xoauth2_initial_response(user: str, access_token: str) -> str:
    """The base64 XOAUTH2 client response: "user=" user ^A "auth=Bearer " token ^A ^A."""
    raw = f"user={user}\x01auth=Bearer {access_token}\x01\x01"
    return base64.b64encode(raw.encode()).decode("ascii")


class TokenSource:
    """Access tokens for one mailbox, cached in shared state until shortly before expiry.

    Providers that rotate refresh tokens (Microsoft returns a new one on each use) get
    the newest one remembered in shared state, keyed by the configured token, so an
    operator who pastes a fresh refresh token is not overridden by an older rotation.
    """

    def __init__(
        self, account_id: int, config: OAuthConfig, http: aiohttp.ClientSession, state: SharedState
    ) -> None:
        self.config = config
        self._http = http
        self._state = state
        origin = hashlib.sha256(config.refresh_token.encode()).hexdigest()[:16]
        self._access_key = f"email:oauth:access:{account_id}:{origin}"
        self._refresh_key = f"email:oauth:refresh:{account_id}:{origin}"
        self._lock_name = f"email:oauth:lock:{account_id}"

    async def access_token(self, *, refresh: bool = False) -> str:
        """A valid access token; `refresh=True` after a server refused the cached one."""
        if not refresh:
            cached = await self._state.get(self._access_key)
            if cached:
                return cached
        async with self._state.lock(self._lock_name, ttl=60):
            cached = await self._state.get(self._access_key)
            if cached and not refresh:
                return cached  # another task refreshed while we waited
            if refresh:
                await self._state.delete(self._access_key)
            return await self._refresh()

    async def token_generator(self) -> str:
        """For aiosmtplib's `oauth_token_generator`."""
        return await self.access_token()

    async def _refresh(self) -> str:
        cfg = self.config
        refresh_token = await self._state.get(self._refresh_key) or cfg.refresh_token
        form = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": cfg.client_id,
        }
        if cfg.client_secret:
            form["client_secret"] = cfg.client_secret
        if cfg.scope:
            form["scope"] = cfg.scope
        try:
            async with self._http.post(
                cfg.token_url, data=form, timeout=aiohttp.ClientTimeout(total=30)
            ) as resp:
                status = resp.status
                body: Any = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise OAuthError(f"token endpoint unreachable: {exc}", permanent=False) from exc
        if status != 200 or not isinstance(body, dict) or not body.get("access_token"):
            error = body.get("error") if isinstance(body, dict) else None
            detail = body.get("error_description") if isinstance(body, dict) else None
            # RFC 6749 §5.2: invalid_grant = the refresh token is expired or revoked,
            # invalid_client = wrong client id/secret: only the operator can fix these
            permanent = error in ("invalid_grant", "invalid_client", "unauthorized_client")
            raise OAuthError(
                f"token endpoint answered {status}: {error or 'no access_token'}"
                + (f" ({str(detail)[:200]})" if detail else ""),
                permanent=permanent,
            )
        token = str(body["access_token"])
        expires_in = _seconds(body.get("expires_in"), default=3600.0)
        await self._state.set(
            self._access_key, token, ttl=max(MIN_CACHE_SECONDS, expires_in - EXPIRY_MARGIN)
        )
        rotated = body.get("refresh_token")
        if isinstance(rotated, str) and rotated and rotated != refresh_token:
            await self._state.set(self._refresh_key, rotated, ttl=ROTATED_TTL)
        log.info("email oauth token refreshed (valid %.0f s)", expires_in)
        return token


def _seconds(value: Any, *, default: float) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default
