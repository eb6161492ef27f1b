"""Every route × every role: allowed or denied, generated from the application's router.

EXPECTED is the specification (issue 9): a route missing from it, or one it names that
the router lacks, fails the test; each role then calls each route, the console with its
session and the API with its own token."""

from __future__ import annotations

import re

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import select

from conversations.access import Role
from conversations.models import ChannelAccount, Message
from tests.admin_web.people import ROLES, Org, api_token, bearer
from tests.system import System

A, M, S, K = Role.ADMIN, Role.MANAGER, Role.SALES, Role.MARKETER
EVERYONE = frozenset({A, M, S, K})
STAFF = frozenset({A, M, S})
MANAGERS = frozenset({A, M})
ADMINS = frozenset({A})
PUBLIC = frozenset[Role]()

EXPECTED: dict[tuple[str, str], frozenset[Role]] = {
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): PUBLIC,
    ("GET", "/login/totp"): PUBLIC,
    ("POST", "/login/totp"): PUBLIC,
    ("POST", "/logout"): EVERYONE,
    ("POST", "/lang"): EVERYONE,
    ("GET", "/"): EVERYONE,
    ("GET", "/inbox"): STAFF,
    ("GET", "/live/events"): STAFF,
    ("GET", "/conversations/{id}"): STAFF,
    ("GET", "/conversations/{id}/messages"): STAFF,
    ("POST", "/conversations/{id}/reply"): STAFF,
    ("POST", "/conversations/{id}/notes"): STAFF,
    ("POST", "/conversations/{id}/assign"): STAFF,
    ("POST", "/conversations/{id}/status"): STAFF,
    ("POST", "/conversations/{id}/mode"): STAFF,
    ("GET", "/media/{message_id}"): STAFF,
    ("GET", "/quick-replies"): STAFF,
    ("POST", "/quick-replies"): STAFF,
    ("POST", "/quick-replies/{id}/delete"): STAFF,
    ("GET", "/customers/{id}"): STAFF,
    ("GET", "/search"): STAFF,
    ("GET", "/search/export"): MANAGERS,
    ("GET", "/dashboard"): MANAGERS,
    ("GET", "/stats/staff"): MANAGERS,
    ("GET", "/settings/accounts"): ADMINS,
    ("GET", "/settings/accounts/{id}"): ADMINS,
    ("POST", "/settings/accounts"): ADMINS,
    ("POST", "/settings/accounts/{id}"): ADMINS,
    ("POST", "/settings/accounts/{id}/hours"): ADMINS,
    ("POST", "/settings/accounts/{id}/test"): ADMINS,
    ("GET", "/settings/users"): ADMINS,
    ("POST", "/settings/users"): ADMINS,
    ("POST", "/settings/users/{id}/role"): ADMINS,
    ("POST", "/settings/users/{id}/active"): ADMINS,
    ("POST", "/settings/teams"): ADMINS,
    ("GET", "/settings/handover"): MANAGERS,
    ("POST", "/settings/handover"): MANAGERS,
    ("GET", "/me"): EVERYONE,
    ("POST", "/me/password"): EVERYONE,
    ("POST", "/me/totp/start"): ADMINS,
    ("POST", "/me/totp/confirm"): ADMINS,
    ("POST", "/me/totp/disable"): EVERYONE,
    ("POST", "/me/tokens"): EVERYONE,
    ("POST", "/me/tokens/{id}/revoke"): EVERYONE,
    ("GET", "/audit"): ADMINS,
    ("GET", "/sandbox"): STAFF,
    ("POST", "/sandbox/send"): STAFF,
    ("GET", "/api/v1/openapi.yaml"): PUBLIC,
    ("GET", "/api/v1/me"): EVERYONE,
    ("GET", "/api/v1/conversations"): STAFF,
    ("GET", "/api/v1/conversations/{id}"): STAFF,
    ("GET", "/api/v1/conversations/{id}/messages"): STAFF,
    ("POST", "/api/v1/conversations/{id}/messages"): STAFF,
    ("POST", "/api/v1/conversations/{id}/notes"): STAFF,
    ("POST", "/api/v1/conversations/{id}/assign"): STAFF,
    ("POST", "/api/v1/conversations/{id}/status"): STAFF,
    ("GET", "/api/v1/customers/{id}"): STAFF,
    ("GET", "/api/v1/search"): STAFF,
    ("GET", "/api/v1/stats/staff"): MANAGERS,
}
# not the console's: provider callbacks, health, static files
FOREIGN = re.compile(r"^/(callbacks|healthz|static)/?")


def console_routes(app: web.Application) -> set[tuple[str, str]]:
    out = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter") or ""
        if route.method == "HEAD" or FOREIGN.match(path) or not path:
            continue
        out.add((route.method, path))
    return out


def test_matrix_names_every_route(console: System) -> None:
    assert console_routes(console.server.app) == set(EXPECTED)


async def _params(console: System, org: Org) -> dict[str, str]:
    """Path parameters pointing at things every allowed role may touch harmlessly."""
    async with console.services.db.transaction() as s:
        spare = ChannelAccount(
            kind="wecom.app",
            name="spare",
            config={},
            secrets={},
            callback_token="spare-token",
            enabled=False,
        )
        s.add(spare)
        await s.flush()
        message_id = await s.scalar(
            select(Message.id).where(Message.conversation_id == org.conversations["unassigned"])
        )
    spare_user = await console.add_staff("spare", Role.SALES)
    return {
        "/conversations/": str(org.conversations["unassigned"]),
        "/api/v1/conversations/": str(org.conversations["unassigned"]),
        "/customers/": str(org.customers["unassigned"]),
        "/api/v1/customers/": str(org.customers["unassigned"]),
        "/media/": str(message_id),
        "/quick-replies/": "999999",
        "/settings/accounts/": str(spare.id),
        "/settings/users/": str(spare_user),
        "/me/tokens/": "999999",
    }


def _url(path: str, params: dict[str, str]) -> str:
    for prefix, value in params.items():
        if path.startswith(prefix):
            return re.sub(r"\{[^}]+\}", value, path)
    assert "{" not in path, path
    return path


@pytest.mark.parametrize("role_user", ["admin", "manager_a", "sales_a", "marketer"])
async def test_each_route_allows_exactly_its_roles(
    console: System, org: Org, role_user: str
) -> None:
    role = ROLES[role_user][0]
    params = await _params(console, org)
    token = await api_token(console, role_user)
    http = await console.login(role_user)
    csrf = re.search(
        r'name="_csrf" value="([^"]+)"', await (await http.get(f"{console.base}/me")).text()
    )
    assert csrf
    wrong: list[str] = []
    # logging out ends the session: last
    routes = sorted(EXPECTED, key=lambda r: r == ("POST", "/logout"))
    try:
        for method, path in routes:
            allowed = EXPECTED[(method, path)]
            if not allowed:
                continue  # public routes: nothing to deny
            url = console.base + _url(path, params)
            headers = {"X-CSRF-Token": csrf.group(1)}
            if path.startswith("/api/"):
                headers = bearer(token)
            kwargs = {"json": {}} if path.startswith("/api/") and method == "POST" else {"data": {}}
            async with http.request(
                method, url, headers=headers, allow_redirects=False, **kwargs
            ) as resp:  # type: ignore[arg-type]
                status = resp.status
            denied = status == 403
            if status == 401 or (role in allowed) == denied:
                wrong.append(
                    f"{method} {path}: {status} ({'allowed' if role in allowed else 'denied'} expected)"
                )
    finally:
        await http.close()
    assert wrong == []


async def test_api_without_token_is_unauthorized(console: System, org: Org) -> None:
    async with aiohttp.ClientSession() as http:
        resp = await http.get(f"{console.base}/api/v1/conversations")
        assert resp.status == 401
        assert (await resp.json())["error"] == "unauthorized"
