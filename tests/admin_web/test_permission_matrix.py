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

from autoreply import service as autoreply_service
from autoreply.faq_transfer import FaqRow
from broadcasts.models import Broadcast, BroadcastRun, RunStatus
from conversations.access import Role
from conversations.db import utcnow
from conversations.models import ChannelAccount, Message
from tagging.rules import create_rule
from tagging.segments.service import definition_from, save_segment
from tagging.tags import create_group, create_tag
from tests.admin_web.people import ROLES, Org, api_token, bearer
from tests.system import System

A, M, S, K = Role.ADMIN, Role.MANAGER, Role.SALES, Role.MARKETER
EVERYONE = frozenset({A, M, S, K})
STAFF = frozenset({A, M, S})
MANAGERS = frozenset({A, M})
ADMINS = frozenset({A})
CAMPAIGNS = frozenset({A, M, K})
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
    # operations: scraped with its own optional token, never with a console session
    ("GET", "/metrics"): PUBLIC,
    # tagging: everyone reads the tag catalogue; only managers edit definitions and
    # auto-tag rules; staff tag a customer they may see; segments, bulk tagging,
    # import/export and statistics are campaign work
    ("GET", "/tagging/tags"): EVERYONE,
    ("POST", "/tagging/groups"): MANAGERS,
    ("POST", "/tagging/tags"): MANAGERS,
    ("POST", "/tagging/tags/{id}/archive"): MANAGERS,
    ("POST", "/tagging/rules"): MANAGERS,
    ("POST", "/tagging/rules/{id}/toggle"): MANAGERS,
    ("POST", "/tagging/customers/{id}/tags"): STAFF,
    ("GET", "/tagging/segments"): CAMPAIGNS,
    ("POST", "/tagging/segments"): CAMPAIGNS,
    ("POST", "/tagging/api/segments/count"): CAMPAIGNS,
    ("GET", "/tagging/api/segments/{id}/ids"): CAMPAIGNS,
    ("POST", "/tagging/segments/{id}/bulk-tag"): CAMPAIGNS,
    ("GET", "/tagging/import"): CAMPAIGNS,
    ("POST", "/tagging/import"): CAMPAIGNS,
    ("GET", "/tagging/export.{fmt}"): CAMPAIGNS,
    ("GET", "/tagging/stats"): CAMPAIGNS,
    ("GET", "/tagging/api/stats/{dimension}"): CAMPAIGNS,
    # broadcasts: campaign work; approval (see VARIANTS) by managers; links are public
    ("GET", "/broadcasts"): CAMPAIGNS,
    ("GET", "/broadcasts/new"): CAMPAIGNS,
    ("POST", "/broadcasts"): CAMPAIGNS,
    ("GET", "/broadcasts/{id}"): CAMPAIGNS,
    ("POST", "/broadcasts/{id}/{action}"): CAMPAIGNS,
    ("POST", "/broadcasts/runs/{id}/{action}"): CAMPAIGNS,
    ("GET", "/broadcasts/runs/{id}/export.csv"): CAMPAIGNS,
    ("GET", "/r/{token}"): PUBLIC,
    ("GET", "/email/unsubscribe/{token}"): PUBLIC,
    ("POST", "/email/unsubscribe/{token}"): PUBLIC,
    # auto-reply: rule and FAQ editors and hit counts for managers; anyone who answers
    # customers may try a message
    ("GET", "/autoreply/rules"): MANAGERS,
    ("GET", "/autoreply/rules/new"): MANAGERS,
    ("GET", "/autoreply/rules/{id}"): MANAGERS,
    ("POST", "/autoreply/rules"): MANAGERS,
    ("POST", "/autoreply/rules/{id}"): MANAGERS,
    ("GET", "/autoreply/faq"): MANAGERS,
    ("POST", "/autoreply/faq"): MANAGERS,
    ("GET", "/autoreply/faq/export.{fmt}"): MANAGERS,
    ("POST", "/autoreply/faq/import"): MANAGERS,
    ("POST", "/autoreply/terms"): MANAGERS,
    ("GET", "/autoreply/hits"): MANAGERS,
    ("GET", "/autoreply/try"): STAFF,
    ("GET", "/autoreply/api/explain"): STAFF,
    # deletions last: the rows they remove are the ones the routes above point at
    ("POST", "/autoreply/rules/{id}/delete"): MANAGERS,
    ("POST", "/autoreply/faq/{id}/delete"): MANAGERS,
    ("POST", "/autoreply/terms/{id}/delete"): MANAGERS,
    # WeCom chat sidebar (issue 14): whoever works customers; sign-in through WeCom OAuth
    ("GET", "/sidebar/"): STAFF,
    ("GET", "/sidebar/oauth"): PUBLIC,
    ("GET", "/sidebar/api/config"): STAFF,
    ("GET", "/sidebar/api/contact"): STAFF,
    ("GET", "/sidebar/api/customer"): STAFF,
    ("GET", "/sidebar/api/group"): STAFF,
    ("POST", "/sidebar/api/tags"): STAFF,
    ("POST", "/sidebar/api/notes"): STAFF,
    ("POST", "/sidebar/api/intent"): STAFF,
    ("POST", "/sidebar/api/follow-ups"): STAFF,
    ("GET", "/sidebar/api/materials"): STAFF,
    ("POST", "/sidebar/api/materials"): STAFF,
    ("GET", "/sidebar/api/media"): STAFF,
    # console completion (issue 9): merging a duplicate customer
    ("POST", "/customers/{id}/merge"): MANAGERS,
    # channel QR codes (渠道活码): marketing pages
    ("GET", "/wecom/codes"): CAMPAIGNS,
    ("GET", "/wecom/codes/new"): CAMPAIGNS,
    ("POST", "/wecom/codes"): CAMPAIGNS,
    ("GET", "/wecom/codes/{id}"): CAMPAIGNS,
    ("GET", "/wecom/codes/{id}/edit"): CAMPAIGNS,
    ("POST", "/wecom/codes/{id}"): CAMPAIGNS,
    ("GET", "/wecom/codes/{id}/qr.png"): CAMPAIGNS,
    ("POST", "/wecom/codes/{id}/delete"): CAMPAIGNS,
    # WeCom customer groups (客户群): salespeople see their own groups; managers sync,
    # hand over and edit the group welcome templates
    ("GET", "/wecom/groups"): STAFF,
    ("GET", "/wecom/groups/{id}"): STAFF,
    ("POST", "/wecom/groups/sync"): MANAGERS,
    ("POST", "/wecom/groups/transfer"): MANAGERS,
    ("GET", "/wecom/groups/welcome"): MANAGERS,
    ("POST", "/wecom/groups/welcome"): MANAGERS,
    ("POST", "/wecom/groups/welcome/{id}"): MANAGERS,
    ("POST", "/wecom/groups/welcome/{id}/delete"): MANAGERS,
    # auto-reply: business hours and lifecycle messages per account
    ("GET", "/autoreply/hours"): MANAGERS,
    ("POST", "/autoreply/hours"): MANAGERS,
    # console polish: audit export for admins; the material library (素材库) for staff
    ("GET", "/audit/export.csv"): ADMINS,
    ("GET", "/materials"): STAFF,
    ("POST", "/materials"): STAFF,
    ("GET", "/materials/{id}"): STAFF,
    ("POST", "/materials/{id}"): STAFF,
    ("GET", "/materials/{id}/file"): STAFF,
    ("POST", "/materials/{id}/delete"): STAFF,
    ("POST", "/sandbox/scan"): STAFF,
    ("POST", "/sandbox/group"): STAFF,
    # WeCom group-send tasks of a broadcast run (企业群发 / 客户群群发): remind and cancel
    ("POST", "/broadcasts/runs/{id}/tasks/{task}/remind"): CAMPAIGNS,
    ("POST", "/broadcasts/runs/{id}/tasks/{task}/cancel"): CAMPAIGNS,
}
# One route, several actions with their own roles: each action is called separately and
# must be allowed for the roles named here (a subset of the route's roles).
VARIANTS: dict[tuple[str, str], dict[str, frozenset[Role]]] = {
    ("POST", "/broadcasts/{id}/{action}"): {
        "submit": CAMPAIGNS,
        "test": CAMPAIGNS,
        "cancel": CAMPAIGNS,
        "approve": MANAGERS,
        "reject": MANAGERS,
    },
    ("POST", "/broadcasts/runs/{id}/{action}"): {
        "pause": CAMPAIGNS,
        "resume": CAMPAIGNS,
        "cancel": CAMPAIGNS,
    },
}
# values for path parameters that are not row ids
NAMED = {"fmt": "csv", "dimension": "gender", "token": "no-such-token"}
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


def test_variants_name_every_action(console: System) -> None:
    """Each {action} route's alternatives (from its pattern) are exactly its VARIANTS."""
    found: dict[tuple[str, str], set[str]] = {}
    for route in console.server.app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        formatter, pattern = info.get("formatter", ""), info.get("pattern")
        if "{action}" in formatter and pattern is not None:
            actions = re.search(r"\(\?P<action>([^)]*)\)", pattern.pattern)
            assert actions, pattern.pattern
            found[(route.method, formatter)] = set(actions.group(1).split("|"))
    assert found == {route: set(actions) for route, actions in VARIANTS.items()}
    for route, actions in VARIANTS.items():
        assert all(roles <= EXPECTED[route] for roles in actions.values())


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
        group = await create_group(s, "matrix")
        tag = await create_tag(s, group, "probe")
        rule = await create_rule(
            s, name="probe", tag_id=tag.id, kind="keyword", pattern="probe", config={}
        )
        segment = await save_segment(s, "matrix", definition_from(expression='tag:"matrix/probe"'))
        # written by the sales user, so any admin or manager may approve it
        broadcast = Broadcast(
            name="matrix",
            audience={"kind": "customers", "customer_ids": []},
            created_by=org.staff["sales_a"],
        )
        s.add(broadcast)
        await s.flush()
        # paused: the scheduler leaves it alone while the matrix calls its routes
        run = BroadcastRun(
            broadcast_id=broadcast.id, fire_time=utcnow(), status=RunStatus.PAUSED.value
        )
        s.add(run)
        reply_rule = await autoreply_service.create_rule(
            s, {"name": "probe", "keywords": ["probe"], "replies": ["ok"]}, actor_id=None
        )
        faq = await autoreply_service.save_faq(
            s, FaqRow(slug="probe", question="probe?", answer="ok"), actor_id=None
        )
        term = await autoreply_service.save_term(s, "probe", ["p"], actor_id=None)
        await s.flush()
    spare_user = await console.add_staff("spare", Role.SALES)
    return {
        "/tagging/tags/": str(tag.id),
        "/tagging/rules/": str(rule.id),
        "/tagging/customers/": str(org.customers["unassigned"]),
        "/tagging/segments/": str(segment.id),
        "/tagging/api/segments/": str(segment.id),
        "/broadcasts/runs/": str(run.id),
        "/broadcasts/": str(broadcast.id),
        "/autoreply/rules/": str(reply_rule.id),
        "/autoreply/faq/": str(faq.id),
        "/autoreply/terms/": str(term.id),
        "/conversations/": str(org.conversations["unassigned"]),
        "/api/v1/conversations/": str(org.conversations["unassigned"]),
        "/customers/": str(org.customers["unassigned"]),
        "/api/v1/customers/": str(org.customers["unassigned"]),
        "/media/": str(message_id),
        "/quick-replies/": "999999",
        "/settings/accounts/": str(spare.id),
        "/settings/users/": str(spare_user),
        "/me/tokens/": "999999",
        "/wecom/codes/": "999999",
        "/wecom/groups/": "999999",  # no such group or template: 404 for allowed roles
        "/materials/": "999999",
    }


def _url(path: str, params: dict[str, str], action: str | None = None) -> str:
    """The path with its row id (first matching prefix), action and named values."""
    if action is not None:
        path = path.replace("{action}", action)
    for name, value in NAMED.items():
        path = path.replace(f"{{{name}}}", value)
    for prefix, value in params.items():
        if path.startswith(prefix):
            return re.sub(r"\{[^}]+\}", value, path)
    assert "{" not in path, path
    return path


def _calls(route: tuple[str, str]) -> list[tuple[str | None, frozenset[Role]]]:
    """(action, allowed roles) for each call the matrix makes to a route."""
    variants = VARIANTS.get(route)
    if variants is None:
        return [(None, EXPECTED[route])]
    return list(variants.items())


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
            for action, allowed in _calls((method, path)):
                if not allowed:
                    continue  # public routes: nothing to deny
                url = console.base + _url(path, params, action)
                headers = {"X-CSRF-Token": csrf.group(1)}
                if path.startswith("/api/"):
                    headers = bearer(token)
                json_body = path.startswith(("/api/", "/tagging/api/")) and method == "POST"
                kwargs = {"json": {}} if json_body else {"data": {}}
                async with http.request(
                    method, url, headers=headers, allow_redirects=False, **kwargs
                ) as resp:  # type: ignore[arg-type]
                    status = resp.status
                denied = status == 403
                # a server error is no answer to "may this role do it"
                if status == 401 or status >= 500 or (role in allowed) == denied:
                    expected = "allowed" if role in allowed else "denied"
                    wrong.append(f"{method} {url}: {status} ({expected} expected)")
    finally:
        await http.close()
    assert wrong == []


async def test_api_without_token_is_unauthorized(console: System, org: Org) -> None:
    async with aiohttp.ClientSession() as http:
        resp = await http.get(f"{console.base}/api/v1/conversations")
        assert resp.status == 401
        assert (await resp.json())["error"] == "unauthorized"
