"""Console pages for WeCom customer groups (客户群): the group list (filter by account and
owner), a group's page (members with their customers, join/leave history, archived
timeline), group welcome templates, sync and hand-over. Salespeople see the groups they
own; managers and admins see all and may sync, hand over and edit templates.

Mount with `ConsoleDeps.extra_routes.append(group_views.routes)`, add
`group_views.dashboard_panel` to `ConsoleDeps.dashboard_panels`, and set
`app[GROUPS_CONSOLE_KEY] = GroupsConsole(api_for)` so the buttons can call WeCom.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from channels.wecom.api import WeComApi
from channels.wecom.errors import READABLE, WeComApiError
from channels.wecom.groups import welcome
from channels.wecom.groups.models import CustomerGroup, GroupWelcomeTemplate
from channels.wecom.groups.queries import group_page, list_groups
from channels.wecom.groups.stats import beijing_day, daily_series
from channels.wecom.groups.sync import run_group_sync
from channels.wecom.groups.transfer import transfer_groups
from conversations.access import Role
from conversations.models import ChannelAccount

from .deps import DEPS_KEY
from .i18n import gettext
from .policy import MANAGERS, STAFF, allow
from .render import render
from .security import user_of, viewer_of

routes = web.RouteTableDef()
CONTACT_KIND = "wecom.contact"


@dataclass(frozen=True)
class GroupsConsole:
    """What the group pages need besides the store: a WeCom API client per account."""

    api_for: Callable[[int], Awaitable[WeComApi]] | None = None


GROUPS_CONSOLE_KEY = web.AppKey("crmbot_wecom_groups", GroupsConsole)


def _own_scope(request: web.Request) -> list[str] | None:
    """A salesperson sees the groups they own (by WeCom userid); others see all."""
    if viewer_of(request).role == Role.SALES:
        userid = user_of(request).wecom_userid
        return [userid] if userid else []
    return None


async def _accounts(session: AsyncSession) -> list[ChannelAccount]:
    return list(
        (
            await session.scalars(
                select(ChannelAccount)
                .where(ChannelAccount.kind == CONTACT_KIND)
                .order_by(ChannelAccount.id)
            )
        ).all()
    )


def _int(value: Any) -> int | None:
    text = str(value or "").strip()
    return int(text) if text.isdigit() else None


async def _api(request: web.Request, account_id: int | None) -> WeComApi:
    console = request.app.get(GROUPS_CONSOLE_KEY)
    if account_id is None:
        raise web.HTTPBadRequest(text=gettext("Choose a WeCom customer contact account."))
    async with request.app[DEPS_KEY].db.reading() as s:
        account = await s.get(ChannelAccount, account_id)
    if account is None or account.kind != CONTACT_KIND:
        raise web.HTTPBadRequest(text=gettext("Choose a WeCom customer contact account."))
    if console is None or console.api_for is None:
        raise web.HTTPServiceUnavailable(text=gettext("WeCom is not connected in this process."))
    try:
        return await console.api_for(account_id)
    except LookupError as exc:
        raise web.HTTPBadRequest(text=gettext("Choose a WeCom customer contact account.")) from exc


def _wecom_failed(exc: WeComApiError) -> web.HTTPBadGateway:
    return web.HTTPBadGateway(text=READABLE.get(exc.errcode, f"WeCom errcode {exc.errcode}"))


@routes.get("/wecom/groups")
@allow(STAFF)
async def group_list(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    account_id = _int(request.query.get("account"))
    owner = request.query.get("owner", "").strip() or None
    async with deps.db.reading() as s:
        rows = await list_groups(
            s,
            account_id=account_id,
            owner=owner,
            only_owners=_own_scope(request),
            include_dismissed=request.query.get("dismissed") == "1",
        )
        accounts = await _accounts(s)
    return await render(
        request,
        "wecom_groups/list.html",
        {
            "rows": rows,
            "accounts": accounts,
            "account_id": account_id,
            "owner": owner or "",
            "dismissed": request.query.get("dismissed") == "1",
            "manage": viewer_of(request).role in MANAGERS,
        },
    )


@routes.get(r"/wecom/groups/{id:\d+}")
@allow(STAFF)
async def group_detail(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    async with deps.db.reading() as s:
        page = await group_page(s, int(request.match_info["id"]))
    scope = _own_scope(request)
    if page is None or (scope is not None and page.group.owner_userid not in scope):
        raise web.HTTPNotFound(text=gettext("No such group."))
    names = {
        row.member.member_id: (row.customer.display_name if row.customer else "")
        or row.member.name
        or row.member.member_id
        for row in page.members
    }
    return await render(
        request,
        "wecom_groups/group.html",
        {"page": page, "names": names, "manage": viewer_of(request).role in MANAGERS},
    )


@routes.post("/wecom/groups/sync")
@allow(MANAGERS)
async def group_sync(request: web.Request) -> web.Response:
    form = await request.post()
    account_id = _int(form.get("account_id"))
    api = await _api(request, account_id)
    assert account_id is not None
    try:
        # one page inline (≤1000 groups); a bigger corp's pass goes on in the worker job
        # from the stored cursor (sync.continue_group_sync)
        await run_group_sync(request.app[DEPS_KEY].db, account_id, api, max_pages=1)
    except WeComApiError as exc:
        raise _wecom_failed(exc) from exc
    raise web.HTTPSeeOther(f"/wecom/groups?account={account_id}")


@routes.post("/wecom/groups/transfer")
@allow(MANAGERS)
async def group_transfer(request: web.Request) -> web.Response:
    form = await request.post()
    account_id = _int(form.get("account_id"))
    from_userid = str(form.get("from_userid", "")).strip()
    to_userid = str(form.get("to_userid", "")).strip()
    if not from_userid or not to_userid:
        raise web.HTTPBadRequest(text=gettext("Name the current and the new owner."))
    api = await _api(request, account_id)
    assert account_id is not None
    chat_ids = [str(c) for c in form.getall("chat_id", [])] or None
    try:
        report = await transfer_groups(
            request.app[DEPS_KEY].db,
            api,
            account_id,
            from_userid,
            to_userid,
            form.get("resigned") == "1",
            chat_ids=chat_ids,
        )
    except WeComApiError as exc:
        raise _wecom_failed(exc) from exc
    return await render(
        request,
        "wecom_groups/transfer.html",
        {"report": report, "from_userid": from_userid, "to_userid": to_userid},
    )


@routes.get("/wecom/groups/welcome")
@allow(MANAGERS)
async def welcome_list(request: web.Request) -> web.Response:
    async with request.app[DEPS_KEY].db.reading() as s:
        templates = list(
            (await s.scalars(select(GroupWelcomeTemplate).order_by(GroupWelcomeTemplate.id))).all()
        )
        accounts = await _accounts(s)
    return await render(
        request, "wecom_groups/welcome.html", {"templates": templates, "accounts": accounts}
    )


def _attachment(form: Any) -> dict[str, Any]:
    title, url = str(form.get("link_title", "")).strip(), str(form.get("link_url", "")).strip()
    if url:
        return {"link": {"title": title or url, "url": url}}
    image = str(form.get("image_url", "")).strip()
    if image:
        return {"image": {"pic_url": image}}
    return {}


@routes.post("/wecom/groups/welcome")
@allow(MANAGERS)
async def welcome_create(request: web.Request) -> web.Response:
    form = await request.post()
    account_id = _int(form.get("account_id"))
    api = await _api(request, account_id)
    assert account_id is not None
    try:
        await welcome.create_template(
            request.app[DEPS_KEY].db,
            api,
            account_id,
            str(form.get("text", "")),
            _attachment(form),
            notify=form.get("notify") == "1",
        )
    except welcome.TemplateError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from exc
    except WeComApiError as exc:
        raise _wecom_failed(exc) from exc
    raise web.HTTPSeeOther("/wecom/groups/welcome")


async def _template(request: web.Request) -> GroupWelcomeTemplate:
    async with request.app[DEPS_KEY].db.reading() as s:
        row = await s.get(GroupWelcomeTemplate, int(request.match_info["id"]))
    if row is None:
        raise web.HTTPNotFound(text=gettext("No such template."))
    return row


@routes.post(r"/wecom/groups/welcome/{id:\d+}")
@allow(MANAGERS)
async def welcome_edit(request: web.Request) -> web.Response:
    row = await _template(request)
    form = await request.post()
    api = await _api(request, row.account_id)
    try:
        await welcome.edit_template(
            request.app[DEPS_KEY].db,
            api,
            row.account_id,
            row.template_id,
            str(form.get("text", "")),
            _attachment(form),
        )
    except welcome.TemplateError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from exc
    except WeComApiError as exc:
        raise _wecom_failed(exc) from exc
    raise web.HTTPSeeOther("/wecom/groups/welcome")


@routes.post(r"/wecom/groups/welcome/{id:\d+}/delete")
@allow(MANAGERS)
async def welcome_delete(request: web.Request) -> web.Response:
    row = await _template(request)
    api = await _api(request, row.account_id)
    try:
        await welcome.delete_template(
            request.app[DEPS_KEY].db, api, row.account_id, row.template_id
        )
    except WeComApiError as exc:
        raise _wecom_failed(exc) from exc
    raise web.HTTPSeeOther("/wecom/groups/welcome")


async def dashboard_panel(request: web.Request, since: datetime, until: datetime) -> str | None:
    """Customer groups per day on the dashboard: members, new, left, messages, active."""
    async with request.app[DEPS_KEY].db.reading() as s:
        if await s.scalar(select(CustomerGroup.id).limit(1)) is None:
            return None  # no customer groups in this installation: no panel
        days = await daily_series(s, beijing_day(since), beijing_day(until - timedelta(seconds=1)))
    return aiohttp_jinja2.render_string("wecom_groups/panel.html", request, {"days": days})
