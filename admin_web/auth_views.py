"""Login, logout and the language switch."""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp_session import get_session, new_session
from sqlalchemy import select

from conversations import totp
from conversations.actions import audit
from conversations.models import StaffUser
from conversations.staff import verify_password

from .deps import DEPS_KEY
from .i18n import LOCALES, gettext
from .policy import ALL_ROLES, PUBLIC, allow
from .render import render
from .security import LOGIN_ATTEMPTS_PER_MINUTE, user_of

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


def _safe_next(target: str | None) -> str:
    # only local paths: never redirect a fresh login to another site
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return "/"  # home sends each role to its start page (marketers have no inbox)


@routes.get("/login")
@allow(PUBLIC)
async def login_form(request: web.Request) -> web.Response:
    return await render(request, "login.html", {"next": _safe_next(request.query.get("next"))})


@routes.post("/login")
@allow(PUBLIC)
async def login(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    form = await request.post()
    username = str(form.get("username", "")).strip()
    password = str(form.get("password", ""))
    target = _safe_next(str(form.get("next", "")))
    wait = await deps.state.take(
        f"login:{username}:{request.remote}",
        rate=LOGIN_ATTEMPTS_PER_MINUTE / 60,
        burst=LOGIN_ATTEMPTS_PER_MINUTE,
    )
    if wait > 0:
        log.warning("login throttled user=%s from=%s", username, request.remote)
        return await render(
            request,
            "login.html",
            {"error": gettext("Too many attempts. Try again in a minute."), "next": target},
            status=429,
        )
    async with deps.db.transaction() as s:
        user = await s.scalar(select(StaffUser).where(StaffUser.username == username))
        ok = user is not None and user.active and verify_password(password, user.password_hash)
        await audit(
            s,
            "login" if ok else "login_failed",
            actor_id=user.id if ok and user else None,
            detail={"username": username},
            ip=request.remote,
        )
    if not ok or user is None:
        return await render(
            request,
            "login.html",
            {"error": gettext("Wrong username or password."), "next": target},
            status=401,
        )
    session = await new_session(request)  # a fresh session id: no fixation
    if user.totp_secret:
        # the password was right; the session becomes a login only with the code
        session["totp_uid"] = user.id
        session["totp_next"] = target
        raise web.HTTPFound("/login/totp")
    session["uid"] = user.id
    raise web.HTTPFound(target)


@routes.get("/login/totp")
@allow(PUBLIC)
async def totp_form(request: web.Request) -> web.Response:
    session = await get_session(request)
    if not isinstance(session.get("totp_uid"), int):
        raise web.HTTPFound("/login")
    return await render(request, "login_totp.html", {})


@routes.post("/login/totp")
@allow(PUBLIC)
async def totp_check(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    session = await get_session(request)
    uid = session.get("totp_uid")
    if not isinstance(uid, int):
        raise web.HTTPFound("/login")
    wait = await deps.state.take(
        f"totp:{uid}", rate=LOGIN_ATTEMPTS_PER_MINUTE / 60, burst=LOGIN_ATTEMPTS_PER_MINUTE
    )
    if wait > 0:
        return await render(
            request,
            "login_totp.html",
            {"error": gettext("Too many attempts. Try again in a minute.")},
            status=429,
        )
    code = str((await request.post()).get("code", ""))
    async with deps.db.transaction() as s:
        user = await s.get(StaffUser, uid)
        ok = user is not None and user.active and bool(user.totp_secret)
        ok = ok and user is not None and totp.verify(str(user.totp_secret), code)
        await audit(s, "login" if ok else "login_totp_failed", actor_id=uid, ip=request.remote)
    if not ok:
        return await render(
            request, "login_totp.html", {"error": gettext("Wrong code.")}, status=401
        )
    target = _safe_next(str(session.get("totp_next", "")))
    session = await new_session(request)
    session["uid"] = uid
    raise web.HTTPFound(target)


@routes.post("/logout")
@allow(ALL_ROLES)
async def logout(request: web.Request) -> web.Response:
    session = await get_session(request)
    session.invalidate()
    raise web.HTTPFound("/login")


@routes.post("/lang")
@allow(ALL_ROLES)
async def switch_language(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    form = await request.post()
    locale = str(form.get("locale", ""))
    if locale in LOCALES:
        async with deps.db.transaction() as s:
            user = await s.get(StaffUser, user_of(request).id)
            if user is not None:
                user.locale = locale
    raise web.HTTPFound(_safe_next(str(form.get("next", "/inbox"))))
