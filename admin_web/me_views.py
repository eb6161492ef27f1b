"""The signed-in user's own settings: password, TOTP (admins), API tokens."""

from __future__ import annotations

from aiohttp import web
from aiohttp_session import get_session

from conversations import totp
from conversations.access import Role
from conversations.actions import audit
from conversations.api_tokens import issue_token, revoke_token, tokens_of
from conversations.models import StaffUser
from conversations.staff import PasswordPolicyError, change_password

from .deps import DEPS_KEY
from .policy import ADMINS, ALL_ROLES, allow
from .render import render
from .security import user_of, viewer_of

routes = web.RouteTableDef()


@routes.get("/me")
@allow(ALL_ROLES)
async def me_page(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    user = user_of(request)
    session = await get_session(request)
    new_token = session.pop("new_token", None)  # shown exactly once
    enrolling = session.get("totp_enrol")
    async with deps.db.reading() as s:
        tokens = await tokens_of(s, user.id)
    return await render(
        request,
        "me.html",
        {
            "tokens": tokens,
            "new_token": new_token,
            "totp_enabled": bool(user.totp_secret),
            "totp_allowed": user.role == Role.ADMIN.value,
            "enrolling": enrolling,
            "otpauth": totp.provisioning_uri(enrolling, user.username) if enrolling else None,
            "message": request.query.get("m"),
        },
    )


@routes.post("/me/password")
@allow(ALL_ROLES)
async def password(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    form = await request.post()
    new, repeat = str(form.get("new", "")), str(form.get("repeat", ""))
    if new != repeat:
        raise web.HTTPFound("/me?m=mismatch")
    async with deps.db.transaction() as s:
        try:
            await change_password(
                s, viewer_of(request).staff_id, str(form.get("current", "")), new, request.remote
            )
        except PasswordPolicyError:
            raise web.HTTPFound("/me?m=weak") from None
        except PermissionError:
            raise web.HTTPFound("/me?m=wrong") from None
    raise web.HTTPFound("/me?m=password")


@routes.post("/me/totp/start")
@allow(ADMINS)
async def totp_start(request: web.Request) -> web.Response:
    session = await get_session(request)
    session["totp_enrol"] = totp.new_secret()
    raise web.HTTPFound("/me#totp")


@routes.post("/me/totp/confirm")
@allow(ADMINS)
async def totp_confirm(request: web.Request) -> web.Response:
    """TOTP is switched on only after a code from the app proves the secret was saved."""
    deps = request.app[DEPS_KEY]
    session = await get_session(request)
    secret = session.get("totp_enrol")
    code = str((await request.post()).get("code", ""))
    if not isinstance(secret, str) or not totp.verify(secret, code):
        raise web.HTTPFound("/me?m=code#totp")
    async with deps.db.transaction() as s:
        user = await s.get(StaffUser, viewer_of(request).staff_id)
        assert user is not None
        user.totp_secret = secret
        await audit(
            s,
            "totp_enabled",
            actor_id=user.id,
            target_type="staff",
            target_id=user.id,
            ip=request.remote,
        )
    session.pop("totp_enrol", None)
    raise web.HTTPFound("/me?m=totp_on")


@routes.post("/me/totp/disable")
@allow(ALL_ROLES)
async def totp_disable(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    code = str((await request.post()).get("code", ""))
    async with deps.db.transaction() as s:
        user = await s.get(StaffUser, viewer_of(request).staff_id)
        assert user is not None
        if not user.totp_secret or not totp.verify(user.totp_secret, code):
            raise web.HTTPFound("/me?m=code#totp")
        user.totp_secret = None
        await audit(
            s,
            "totp_disabled",
            actor_id=user.id,
            target_type="staff",
            target_id=user.id,
            ip=request.remote,
        )
    raise web.HTTPFound("/me?m=totp_off")


@routes.post("/me/tokens")
@allow(ALL_ROLES)
async def token_create(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    name = str((await request.post()).get("name", ""))
    async with deps.db.transaction() as s:
        row, plain = await issue_token(s, viewer_of(request).staff_id, name)
        await audit(
            s,
            "api_token_created",
            actor_id=row.staff_id,
            target_type="api_token",
            target_id=row.id,
            ip=request.remote,
        )
    session = await get_session(request)
    session["new_token"] = plain
    raise web.HTTPFound("/me#tokens")


@routes.post("/me/tokens/{id:\\d+}/revoke")
@allow(ALL_ROLES)
async def token_revoke(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    token_id = int(request.match_info["id"])
    async with deps.db.transaction() as s:
        if await revoke_token(s, viewer_of(request).staff_id, token_id):
            await audit(
                s,
                "api_token_revoked",
                actor_id=viewer_of(request).staff_id,
                target_type="api_token",
                target_id=token_id,
                ip=request.remote,
            )
    raise web.HTTPFound("/me#tokens")
