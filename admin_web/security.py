"""Sessions, login, CSRF, login throttling and secure headers for the console."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from aiohttp import web
from aiohttp_session import get_session
from aiohttp_session import setup as setup_session
from aiohttp_session.cookie_storage import EncryptedCookieStorage

from conversations.access import Role, Viewer
from conversations.models import StaffUser

from .deps import DEPS_KEY
from .i18n import current_locale, negotiate

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# paths that never need a console login (providers, health, static, public pages)
PUBLIC_PREFIXES = (
    "/callbacks/",
    "/healthz",
    "/static/",
    "/login",
    "/metrics",
    "/email/unsubscribe/",
    "/r/",
    "/api/",
    "/sidebar/",  # WeCom chat sidebar: its own sign-in (admin_web.sidebar.views)
)
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOGIN_ATTEMPTS_PER_MINUTE = 5

VIEWER_KEY = web.RequestKey("viewer", Viewer)
USER_KEY = web.RequestKey("user", StaffUser)
# set by a view that refused a conversation; audit_denials records it after the rollback
DENIED_CONVERSATION = web.RequestKey("denied_conversation", int)


def install_sessions(app: web.Application, secret_key: str) -> None:
    key = hashlib.sha256(b"crmbot-session\x00" + secret_key.encode()).digest()
    storage = EncryptedCookieStorage(
        key,  # raw 32 bytes: the storage encodes them itself
        cookie_name="crmbot_session",
        httponly=True,
        samesite="Lax",
        max_age=12 * 3600,
        secure=None,
    )
    setup_session(app, storage)


def csrf_token_for(session: MutableMapping[str, Any]) -> str:
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(24)
        session["csrf"] = token
    return token


@web.middleware
async def secure_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if not request.path.startswith("/callbacks/"):
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
            "script-src 'self'; frame-ancestors 'none'",
        )
    return response


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Attach the staff user and viewer; redirect to /login when there is none."""
    if request.path.startswith(PUBLIC_PREFIXES) or request.path == "/favicon.ico":
        current_locale.set(negotiate(None, request.headers.get("Accept-Language")))
        return await handler(request)
    session = await get_session(request)
    uid = session.get("uid")
    user: StaffUser | None = None
    if isinstance(uid, int):
        deps = request.app[DEPS_KEY]
        async with deps.db.reading() as s:
            user = await s.get(StaffUser, uid)
    if user is None or not user.active:
        session.invalidate()
        if request.method == "GET":
            raise web.HTTPFound(f"/login?next={request.path_qs}")
        raise web.HTTPUnauthorized(text="login required")
    request[USER_KEY] = user
    request[VIEWER_KEY] = Viewer(staff_id=user.id, role=Role(user.role), team_id=user.team_id)
    current_locale.set(negotiate(user.locale, request.headers.get("Accept-Language")))
    return await handler(request)


@web.middleware
async def csrf_protect(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every unsafe console request carries the session's CSRF token (form or header)."""
    if request.method in UNSAFE_METHODS and not request.path.startswith(
        ("/callbacks/", "/api/", "/u/")
    ):
        session = await get_session(request)
        expected = session.get("csrf")
        sent = request.headers.get("X-CSRF-Token")
        if sent is None and request.content_type in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            sent = str((await request.post()).get("_csrf", ""))
        if not isinstance(expected, str) or not sent or not hmac.compare_digest(expected, sent):
            raise web.HTTPForbidden(text="CSRF token missing or wrong; reload the page")
    return await handler(request)


API_PREFIX = "/api/v1/"
API_PUBLIC = ("/api/v1/openapi.yaml",)


@web.middleware
async def authenticate_api(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bearer API tokens for /api/v1: the token's user, with that user's role."""
    if not request.path.startswith(API_PREFIX) or request.path in API_PUBLIC:
        return await handler(request)
    from conversations.api_tokens import user_for_token

    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    user: StaffUser | None = None
    if scheme.lower() == "bearer" and token.strip():
        deps = request.app[DEPS_KEY]
        async with deps.db.transaction() as s:
            user = await user_for_token(s, token.strip())
    if user is None:
        return web.json_response(
            {"error": "unauthorized", "detail": "a valid API token is required"},
            status=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    request[USER_KEY] = user
    request[VIEWER_KEY] = Viewer(staff_id=user.id, role=Role(user.role), team_id=user.team_id)
    current_locale.set(negotiate(user.locale, request.headers.get("Accept-Language")))
    return await handler(request)


@web.middleware
async def audit_denials(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Record refused conversation reads in their own transaction: the view's own
    transaction rolled back with the 403 it raised."""
    try:
        return await handler(request)
    except web.HTTPException:
        conversation_id = request.get(DENIED_CONVERSATION)
        viewer = request.get(VIEWER_KEY)
        if conversation_id is not None and viewer is not None:
            from conversations.queries import record_denial

            async with request.app[DEPS_KEY].db.transaction() as s:
                await record_denial(s, viewer, conversation_id, request.remote)
        raise


def viewer_of(request: web.Request) -> Viewer:
    return request[VIEWER_KEY]


def user_of(request: web.Request) -> StaffUser:
    return request[USER_KEY]


def require_role(request: web.Request, *roles: Role) -> None:
    if viewer_of(request).role not in roles:
        raise web.HTTPForbidden(text="your role may not do this")
