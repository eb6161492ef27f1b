"""Users and teams (admins), and the hand-over of a departed salesperson's customers."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from sqlalchemy import select

from conversations.access import AccessDenied, Role
from conversations.actions import audit
from conversations.handover import Handover, hand_over
from conversations.models import StaffUser, Team
from conversations.staff import (
    PasswordPolicyError,
    create_staff,
    create_team,
    set_active,
    set_role,
)

from .deps import DEPS_KEY
from .forms import denied, int_or_none
from .policy import ADMINS, MANAGERS, allow
from .render import render
from .security import viewer_of

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
_background: set[asyncio.Task[None]] = set()


@routes.get("/settings/users")
@allow(ADMINS)
async def users_page(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    async with deps.db.reading() as s:
        users = (await s.scalars(select(StaffUser).order_by(StaffUser.id))).all()
        teams = (await s.scalars(select(Team).order_by(Team.name))).all()
    return await render(
        request,
        "settings/users.html",
        {
            "users": users,
            "teams": teams,
            "team_names": {t.id: t.name for t in teams},
            "roles": [r.value for r in Role],
            "error": request.query.get("error"),
        },
    )


@routes.post("/settings/users")
@allow(ADMINS)
async def user_create(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    viewer = viewer_of(request)
    form = await request.post()
    role = str(form.get("role", "sales"))
    if role not in {r.value for r in Role}:
        raise web.HTTPBadRequest()
    async with deps.db.transaction() as s:
        try:
            user = await create_staff(
                s,
                username=str(form.get("username", "")).strip(),
                password=str(form.get("password", "")),
                role=Role(role),
                display_name=str(form.get("display_name", "")).strip() or None,
                team_id=int_or_none(form.get("team")),
            )
        except PasswordPolicyError:
            raise web.HTTPFound("/settings/users?error=password") from None
        except ValueError:
            raise web.HTTPFound("/settings/users?error=exists") from None
        user.wecom_userid = str(form.get("wecom_userid", "")).strip() or None
        await audit(
            s,
            "permission_changed",
            actor_id=viewer.staff_id,
            target_type="staff",
            target_id=user.id,
            detail={"created": True, "role": role, "team_id": user.team_id},
            ip=request.remote,
        )
    raise web.HTTPFound("/settings/users")


@routes.post("/settings/users/{id:\\d+}/role")
@allow(ADMINS)
async def user_role(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    form = await request.post()
    role = str(form.get("role", ""))
    if role not in {r.value for r in Role}:
        raise web.HTTPBadRequest()
    async with deps.db.transaction() as s:
        try:
            await set_role(
                s,
                viewer_of(request),
                int(request.match_info["id"]),
                role=Role(role),
                team_id=int_or_none(form.get("team")),
                ip=request.remote,
            )
        except LookupError:
            raise web.HTTPNotFound() from None
        except ValueError:
            raise web.HTTPFound("/settings/users?error=self") from None
    raise web.HTTPFound("/settings/users")


@routes.post("/settings/users/{id:\\d+}/active")
@allow(ADMINS)
async def user_active(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    active = (await request.post()).get("active") == "1"
    async with deps.db.transaction() as s:
        try:
            await set_active(
                s, viewer_of(request), int(request.match_info["id"]), active, ip=request.remote
            )
        except LookupError:
            raise web.HTTPNotFound() from None
        except ValueError:
            raise web.HTTPFound("/settings/users?error=self") from None
    raise web.HTTPFound("/settings/users")


@routes.post("/settings/teams")
@allow(ADMINS)
async def team_create(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    async with deps.db.transaction() as s:
        try:
            await create_team(s, viewer_of(request), str((await request.post()).get("name", "")))
        except ValueError:
            raise web.HTTPFound("/settings/users?error=team") from None
    raise web.HTTPFound("/settings/users")


@routes.get("/settings/handover")
@allow(MANAGERS)
async def handover_page(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    viewer = viewer_of(request)
    async with deps.db.reading() as s:
        query = select(StaffUser).where(StaffUser.role.in_(("sales", "manager")))
        if viewer.role == Role.MANAGER:
            query = query.where(StaffUser.team_id == viewer.team_id)
        staff = (await s.scalars(query.order_by(StaffUser.display_name))).all()
        done = (await s.scalars(select(Handover).order_by(Handover.id.desc()).limit(20))).all()
    return await render(
        request,
        "settings/handover.html",
        {
            "staff": staff,
            "names": {u.id: u.display_name for u in staff},
            "handovers": done,
            "error": request.query.get("error"),
        },
    )


@routes.post("/settings/handover")
@allow(MANAGERS)
async def handover(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    form = await request.post()
    giver, taker = int_or_none(form.get("from")), int_or_none(form.get("to"))
    if giver is None or taker is None:
        raise web.HTTPFound("/settings/handover?error=choose")
    async with deps.db.transaction() as s:
        try:
            record = await hand_over(
                s,
                viewer_of(request),
                from_staff_id=giver,
                to_staff_id=taker,
                deactivate=form.get("deactivate") == "1",
                ip=request.remote,
            )
        except AccessDenied as exc:
            raise denied(exc) from None
        except (LookupError, ValueError):
            raise web.HTTPFound("/settings/handover?error=choose") from None
        record_id, pending = record.id, record.transfer_status == "pending"
    if pending and deps.customer_transfer is not None:
        # the provider call runs after the commit, outside the request
        task = asyncio.create_task(deps.customer_transfer(record_id))
        _background.add(task)
        task.add_done_callback(_background.discard)
    raise web.HTTPFound("/settings/handover")
