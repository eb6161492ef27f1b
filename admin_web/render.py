"""Template rendering with the context every console page needs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import get_session
from markupsafe import Markup

from conversations.access import Role
from conversations.queries import unread_total

from .deps import DEPS_KEY
from .i18n import current_locale, gettext
from .policy import ADMINS, MANAGERS, STAFF
from .security import USER_KEY, VIEWER_KEY, csrf_token_for


@dataclass(frozen=True)
class NavLink:
    path: str
    label: str
    order: int


def _builtin_nav(role: Role, sandbox: bool) -> list[NavLink]:
    entries = [
        ("/inbox", gettext("Inbox"), STAFF, 10),
        ("/search", gettext("Search"), STAFF, 20),
        ("/materials", gettext("Materials"), STAFF, 25),
        ("/dashboard", gettext("Dashboard"), MANAGERS, 30),
        ("/stats/staff", gettext("Team statistics"), MANAGERS, 40),
        ("/settings/accounts", gettext("Channels"), ADMINS, 80),
        ("/settings/users", gettext("Users"), ADMINS, 85),
        ("/settings/handover", gettext("Hand-over"), MANAGERS, 86),
        ("/audit", gettext("Audit log"), ADMINS, 90),
    ]
    if sandbox:
        entries.append(("/sandbox", gettext("Customer simulator"), STAFF, 95))
    return [NavLink(p, label, o) for p, label, roles, o in entries if role in roles]


async def render(
    request: web.Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
) -> web.Response:
    session = await get_session(request)
    deps = request.app[DEPS_KEY]
    locale = current_locale.get()
    ctx: dict[str, Any] = {
        "csrf": csrf_token_for(session),
        "locale": locale,
        "user": request.get(USER_KEY),
        "sandbox": deps.simulator is not None,
        "path": request.path,
        "unread_total": 0,
        "nav": [],
    }
    viewer = request.get(VIEWER_KEY)
    if viewer is not None:
        nav = _builtin_nav(viewer.role, deps.simulator is not None)
        nav += [
            NavLink(e.path, e.label_zh if locale == "zh" else e.label_en, e.order)
            for e in deps.nav
            if viewer.role.value in e.roles
        ]
        ctx["nav"] = sorted(nav, key=lambda n: n.order)
        async with deps.db.reading() as s:
            ctx["unread_total"] = await unread_total(s, viewer)
    ctx.update(context or {})
    return aiohttp_jinja2.render_template(template, request, ctx, status=status)


def panels(chunks: list[str | None]) -> list[Markup]:
    """Other packages' sections, in registration order; their HTML is trusted as theirs."""
    return [Markup(c) for c in chunks if c]  # noqa: S704  (rendered by the owning package)
