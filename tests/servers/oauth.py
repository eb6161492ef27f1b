"""A loopback OAuth 2.0 authorisation server: the token endpoint crmbot refreshes its access
token at (RFC 6749 §6, refresh_token grant) and the introspection endpoint (RFC 7662)
Dovecot's oauth2 passdb asks whether a bearer token is valid.

It runs in its own thread (like aiosmtpd's Controller): Dovecot is started once per test
session and calls the introspection URL whatever event loop a test is using.
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from .ports import free_port


@dataclass
class Grant:
    """A refresh token issued to one client for one mailbox user."""

    client_id: str
    client_secret: str
    username: str
    rotate: bool = False  # Microsoft-style: every refresh returns a new refresh token


@dataclass
class OAuthServer:
    port: int
    expires_in: int = 3600
    grants: dict[str, Grant] = field(default_factory=dict)  # refresh token → grant
    active: dict[str, str] = field(default_factory=dict)  # access token → username
    refreshes: int = 0  # how many refresh_token grants were answered
    lock: threading.RLock = field(default_factory=threading.RLock)
    _httpd: ThreadingHTTPServer | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def token_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    @property
    def introspection_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/introspect"

    def issue(self, username: str, *, rotate: bool = False) -> Grant:
        """A new client registration and refresh token for `username`."""
        grant = Grant(f"client-{secrets.token_hex(4)}", secrets.token_hex(16), username, rotate)
        with self.lock:
            self.grants[f"rt-{secrets.token_hex(16)}"] = grant
        return grant

    def refresh_token_of(self, grant: Grant) -> str:
        with self.lock:
            return next(token for token, g in self.grants.items() if g is grant)

    def revoke_grant(self, grant: Grant) -> None:
        """The user withdrew consent: the refresh token answers invalid_grant."""
        with self.lock:
            for token in [t for t, g in self.grants.items() if g is grant]:
                del self.grants[token]

    def revoke_access_tokens(self) -> None:
        """Access tokens stop working before their expiry (password change, admin revoke)."""
        with self.lock:
            self.active.clear()

    def _token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if form.get("grant_type") != "refresh_token":
            return 400, {"error": "unsupported_grant_type"}
        with self.lock:
            grant = self.grants.get(form.get("refresh_token", ""))
            if grant is None:
                return 400, {"error": "invalid_grant", "error_description": "token revoked"}
            if (form.get("client_id"), form.get("client_secret")) != (
                grant.client_id,
                grant.client_secret,
            ):
                return 401, {"error": "invalid_client"}
            access = f"at-{secrets.token_hex(16)}"
            self.active[access] = grant.username
            self.refreshes += 1
            body: dict[str, Any] = {
                "access_token": access,
                "token_type": "Bearer",
                "expires_in": self.expires_in,
            }
            if grant.rotate:
                del self.grants[form["refresh_token"]]
                new = f"rt-{secrets.token_hex(16)}"
                self.grants[new] = grant
                body["refresh_token"] = new
        return 200, body

    def _introspect(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            username = self.active.get(form.get("token", ""))
        if username is None:
            return 200, {"active": False}
        return 200, {"active": True, "username": username}

    def start(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                form = {k: v[0] for k, v in parse_qs(raw).items()}
                if self.path == "/token":
                    status, body = server._token(form)
                elif self.path == "/introspect":
                    status, body = server._introspect(form)
                else:
                    status, body = 404, {"error": "not_found"}
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output quiet

        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None


def start() -> OAuthServer:
    server = OAuthServer(port=free_port())
    server.start()
    return server
