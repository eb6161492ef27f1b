"""Console pages for channel QR codes (渠道活码): list with totals, create/edit form (rota,
backup person, source tags, welcome message), delete, QR download and a statistics page
(new customers per day, lost customers, conversion to a chosen tag).

Mount `routes` with `ConsoleDeps.extra_routes` and set `CODES_CONSOLE_KEY` to a
`CodeService` (its `api_for` gives a 客户联系 account's API client): the pages call
WeCom directly, as the hand-over page does, so a refusal shows on the form.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import aiohttp_jinja2
from aiohttp import web
from multidict import MultiDictProxy
from sqlalchemy import select

from channels.wecom.codes.models import ContactCode
from channels.wecom.codes.rota import ALL_WEEK, RotaMember
from channels.wecom.codes.service import CodeDraft, CodeError, CodeService
from channels.wecom.codes.stats import code_stats, code_totals, codes_in_period
from conversations.db import utcnow
from conversations.models import ChannelAccount
from tagging.models import Tag, TagGroup

from .deps import DEPS_KEY
from .i18n import gettext
from .policy import CAMPAIGNS, allow
from .render import render
from .security import user_of

routes = web.RouteTableDef()
CODES_CONSOLE_KEY = web.AppKey("crmbot_wecom_codes", CodeService)
QR_MAX_BYTES = 2 * 1024 * 1024
STATS_DAYS = 30


def _service(request: web.Request) -> CodeService:
    service = request.app.get(CODES_CONSOLE_KEY)
    if service is None:
        raise web.HTTPServiceUnavailable(text="channel QR codes are not wired")
    return service


def _day_range(raw: str) -> tuple[int, int]:
    """ "1-5" → (1, 5); "9" → (9, 9)."""
    first, _, last = raw.partition("-")
    return int(first), int(last or first)


def parse_members(text: str) -> tuple[RotaMember, ...]:
    """One member a line: `userid, daily limit, weekdays 1-7, hours` — e.g.
    `lisi, 20, 1-5, 9-18`; everything after the userid is optional."""
    members = []
    for line in text.replace("，", ",").splitlines():
        parts = [p.strip() for p in line.split(",")]
        if not parts[0]:
            continue
        try:
            limit = int(parts[1]) if len(parts) > 1 and parts[1] else 0
            weekdays: tuple[int, ...] = ALL_WEEK
            if len(parts) > 2 and parts[2]:
                low, high = _day_range(parts[2])
                weekdays = tuple(d - 1 for d in range(low, high + 1) if 1 <= d <= 7)
            start, end = 0, 24
            if len(parts) > 3 and parts[3]:
                start, end = _day_range(parts[3])
        except ValueError as exc:
            raise CodeError(f"成员行无法识别 (cannot read member line): {line}") from exc
        members.append(RotaMember(parts[0], limit, weekdays, start, end))
    return tuple(members)


def members_text(members: list[Mapping[str, Any]]) -> str:
    lines = []
    for raw in members:
        m = RotaMember.from_json(raw)
        days = f"{min(m.weekdays) + 1}-{max(m.weekdays) + 1}" if m.weekdays else ""
        lines.append(f"{m.userid}, {m.daily_limit}, {days}, {m.start_hour}-{m.end_hour}")
    return "\n".join(lines)


def parse_attachments(text: str) -> tuple[dict[str, Any], ...]:
    """One attachment a line: `image <url>`, `link <title> | <url> | <description>` or
    `miniprogram <title> | <appid> | <page> | <pic_media_id>`."""
    out: list[dict[str, Any]] = []
    for line in text.splitlines():
        kind, _, rest = line.strip().partition(" ")
        fields = [f.strip() for f in rest.split("|")]
        if not kind:
            continue
        if kind == "image" and fields[0]:
            out.append({"msgtype": "image", "image": {"pic_url": fields[0]}})
        elif kind == "link" and len(fields) >= 2:
            link = {"title": fields[0], "url": fields[1]}
            if len(fields) > 2 and fields[2]:
                link["desc"] = fields[2]
            out.append({"msgtype": "link", "link": link})
        elif kind == "miniprogram" and len(fields) >= 4:
            out.append(
                {
                    "msgtype": "miniprogram",
                    "miniprogram": {
                        "title": fields[0],
                        "appid": fields[1],
                        "page": fields[2],
                        "pic_media_id": fields[3],
                    },
                }
            )
        else:
            raise CodeError(f"附件行无法识别 (cannot read attachment line): {line}")
    return tuple(out)


def attachments_text(items: list[Mapping[str, Any]]) -> str:
    lines = []
    for item in items:
        kind = str(item.get("msgtype"))
        body = item.get(kind) or {}
        if kind == "image":
            lines.append(f"image {body.get('pic_url', '')}")
        elif kind == "link":
            lines.append(
                f"link {body.get('title', '')} | {body.get('url', '')} | {body.get('desc', '')}"
            )
        elif kind == "miniprogram":
            values = [body.get(k, "") for k in ("title", "appid", "page", "pic_media_id")]
            lines.append("miniprogram " + " | ".join(values))
    return "\n".join(lines)


def draft_from_form(form: MultiDictProxy[Any]) -> CodeDraft:
    """The code definition the form describes; CodeError names what is wrong."""
    return CodeDraft(
        name=str(form.get("name", "")).strip(),
        state=str(form.get("state", "")).strip(),
        code_type=str(form.get("code_type", "single")),
        rota_mode=str(form.get("rota_mode", "round_robin")),
        members=parse_members(str(form.get("members", ""))),
        backup_userid=str(form.get("backup_userid", "")).strip(),
        skip_verify=form.get("skip_verify") == "1",
        tag_ids=tuple(int(t) for t in form.getall("tag_ids", []) if str(t).isdigit()),
        welcome_text=str(form.get("welcome_text", "")).strip(),
        welcome_attachments=parse_attachments(str(form.get("attachments", ""))),
    )


async def _form_context(request: web.Request, code: ContactCode | None) -> dict[str, Any]:
    deps = request.app[DEPS_KEY]
    async with deps.db.reading() as s:
        accounts = list(
            await s.scalars(
                select(ChannelAccount)
                .where(ChannelAccount.kind == "wecom.contact")
                .order_by(ChannelAccount.id)
            )
        )
        tags = (
            await s.execute(
                select(Tag.id, TagGroup.name, Tag.name)
                .join(TagGroup, Tag.group_id == TagGroup.id)
                .order_by(TagGroup.name, Tag.name)
            )
        ).all()
    return {
        "code": code,
        "accounts": accounts,
        "tags": [(tag_id, f"{group}/{name}") for tag_id, group, name in tags],
        "members": members_text(code.members) if code else "",
        "attachments": attachments_text(code.welcome_attachments) if code else "",
        "problems": [],
    }


async def _code(request: web.Request) -> ContactCode:
    deps = request.app[DEPS_KEY]
    try:
        code_id = int(request.match_info["id"])
    except ValueError as exc:
        raise web.HTTPNotFound() from exc
    async with deps.db.reading() as s:
        code = await s.get(ContactCode, code_id)
    if code is None:
        raise web.HTTPNotFound()
    return code


@routes.get("/wecom/codes")
@allow(CAMPAIGNS)
async def code_list(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    async with deps.db.reading() as s:
        codes = list(
            await s.scalars(
                select(ContactCode)
                .where(ContactCode.status == "active")
                .order_by(ContactCode.id.desc())
            )
        )
        totals = await code_totals(s)
    return await render(request, "wecom_codes/list.html", {"codes": codes, "totals": totals})


@routes.get("/wecom/codes/new")
@allow(CAMPAIGNS)
async def code_new(request: web.Request) -> web.Response:
    return await render(request, "wecom_codes/form.html", await _form_context(request, None))


async def _refused(request: web.Request, code: ContactCode | None, problem: str) -> web.Response:
    context = await _form_context(request, code)
    form = await request.post()
    context.update(
        problems=[problem],
        values=form,
        members=str(form.get("members", "")),
        attachments=str(form.get("attachments", "")),
    )
    return await render(request, "wecom_codes/form.html", context, status=400)


@routes.post("/wecom/codes")
@allow(CAMPAIGNS)
async def code_create(request: web.Request) -> web.Response:
    form = await request.post()
    try:
        draft = draft_from_form(form)
        account_id = int(str(form.get("account_id", "")))
        code = await _service(request).create(account_id, draft, actor_id=user_of(request).id)
    except (CodeError, ValueError) as exc:
        return await _refused(request, None, str(exc))
    except (aiohttp.ClientError, TimeoutError) as exc:
        return await _refused(request, None, gettext("WeCom could not be reached") + f": {exc}")
    raise web.HTTPFound(f"/wecom/codes/{code.id}")


@routes.get("/wecom/codes/{id}")
@allow(CAMPAIGNS)
async def code_detail(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    code = await _code(request)
    days = STATS_DAYS
    if request.query.get("days", "").isdigit():
        days = max(1, min(366, int(request.query["days"])))
    tag_raw = request.query.get("tag", "")
    conversion_tag = int(tag_raw) if tag_raw.isdigit() else None
    end = utcnow()
    tz = _service(request).tz
    today = end.astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0)
    start: datetime = today - timedelta(days=days - 1)
    async with deps.db.reading() as s:
        stats = await code_stats(
            s,
            code.id,
            start=start,
            end=end + timedelta(seconds=1),
            tz=tz,
            conversion_tag_id=conversion_tag,
        )
    context = await _form_context(request, code)
    context.update(stats=stats, days=days, conversion_tag=conversion_tag)
    return await render(request, "wecom_codes/detail.html", context)


@routes.get("/wecom/codes/{id}/edit")
@allow(CAMPAIGNS)
async def code_edit(request: web.Request) -> web.Response:
    code = await _code(request)
    return await render(request, "wecom_codes/form.html", await _form_context(request, code))


@routes.post("/wecom/codes/{id}")
@allow(CAMPAIGNS)
async def code_update(request: web.Request) -> web.Response:
    code = await _code(request)
    form = await request.post()
    try:
        await _service(request).update(code.id, draft_from_form(form))
    except CodeError as exc:
        return await _refused(request, code, str(exc))
    except (aiohttp.ClientError, TimeoutError) as exc:
        return await _refused(request, code, gettext("WeCom could not be reached") + f": {exc}")
    raise web.HTTPFound(f"/wecom/codes/{code.id}")


@routes.post("/wecom/codes/{id}/delete")
@allow(CAMPAIGNS)
async def code_delete(request: web.Request) -> web.Response:
    code = await _code(request)
    try:
        await _service(request).delete(code.id)
    except CodeError as exc:
        raise web.HTTPConflict(text=str(exc)) from exc
    raise web.HTTPFound("/wecom/codes")


@routes.get("/wecom/codes/{id}/qr.png")
@allow(CAMPAIGNS)
async def code_qr(request: web.Request) -> web.Response:
    """The QR image from WeCom's qr_code URL, as a download named after the code."""
    code = await _code(request)
    if not code.qr_code:
        raise web.HTTPNotFound(text="this code has no QR image")
    timeout = aiohttp.ClientTimeout(total=15)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as http,
            http.get(code.qr_code) as resp,
        ):
            if resp.status != 200:
                raise web.HTTPBadGateway(text=f"WeCom answered {resp.status}")
            data = await resp.content.read(QR_MAX_BYTES + 1)
            content_type = resp.content_type or "image/png"
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise web.HTTPBadGateway(text=f"cannot fetch the QR image: {exc}") from exc
    if len(data) > QR_MAX_BYTES:
        raise web.HTTPBadGateway(text="QR image too large")
    filename = f"qr-{code.state}.png"  # state: ASCII by validation, safe in a header
    return web.Response(
        body=data,
        content_type=content_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


async def dashboard_panel(request: web.Request, since: datetime, until: datetime) -> str | None:
    """Customers added and lost per code in the dashboard's period (ConsoleDeps.dashboard_panels)."""
    async with request.app[DEPS_KEY].db.reading() as s:
        rows = await codes_in_period(s, since, until)
    if not rows:
        return None  # no channel QR codes in this installation: no panel
    return aiohttp_jinja2.render_string("wecom_codes/panel.html", request, {"rows": rows})
