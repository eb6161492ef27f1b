"""Which roles may call which console route: declared on each handler, checked by a
middleware, and enumerated by the permission-matrix test. The services check again
(conversation scope, team scope): this gate only keeps whole pages away from a role."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiohttp import web

from conversations.access import Role

from .security import VIEWER_KEY

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
H = TypeVar("H", bound=Handler)

ALL_ROLES = frozenset(Role)
STAFF = frozenset({Role.ADMIN, Role.MANAGER, Role.SALES})  # who works conversations
MANAGERS = frozenset({Role.ADMIN, Role.MANAGER})
ADMINS = frozenset({Role.ADMIN})
CAMPAIGNS = frozenset({Role.ADMIN, Role.MANAGER, Role.MARKETER})
PUBLIC = frozenset[Role]()  # no login at all (login page, static)
_ATTR = "__crmbot_roles__"


def allow(roles: frozenset[Role]) -> Callable[[H], H]:
    """Declare the roles that may call this handler."""

    def mark(handler: H) -> H:
        setattr(handler, _ATTR, roles)
        return handler

    return mark


def roles_of(handler: object) -> frozenset[Role] | None:
    """The declared roles, or None when the handler declared nothing."""
    roles = getattr(handler, _ATTR, None)
    return roles if isinstance(roles, frozenset) else None


@web.middleware
async def enforce_policy(request: web.Request, handler: Handler) -> web.StreamResponse:
    viewer = request.get(VIEWER_KEY)
    if viewer is None:  # public paths: authenticate() let them through
        return await handler(request)
    roles = roles_of(request.match_info.handler)
    if roles is not None and viewer.role not in roles:
        if request.path.startswith("/api/"):
            return web.json_response(
                {"error": "forbidden", "detail": "your role may not call this"}, status=403
            )
        raise web.HTTPForbidden(text="your role may not open this page")
    return await handler(request)
