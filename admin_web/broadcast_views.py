"""Console pages for broadcasts (群发) and the public click redirect /r/<token>.

Campaign pages are for admins, managers and marketers; approving or rejecting a
broadcast for admins and managers (the service checks the approver again); the click
redirect is public.

Register with `ConsoleDeps.extra_routes.append(broadcast_views.routes)`; the services
used (policies, audiences, settings) come from `BROADCAST_CONSOLE_KEY` when the wiring
sets it, else the built-in defaults.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from broadcasts.audience import AudienceRegistry, import_contacts
from broadcasts.control import (
    BroadcastError,
    Draft,
    approve,
    cancel_broadcast,
    cancel_run,
    create_broadcast,
    estimate,
    pause_run,
    preview,
    reject,
    resume_run,
    send_test_message,
    submit,
)
from broadcasts.links import record_click
from broadcasts.models import Broadcast, BroadcastRun, BroadcastStatus, RunStatus
from broadcasts.policy import PolicyRegistry
from broadcasts.results import export_csv, progress
from broadcasts.settings import BroadcastSettings
from broadcasts.tasks import (
    TaskChannels,
    TaskControlError,
    TaskControls,
    run_task_summaries,
    settle_tasks,
)
from channels.wecom.groups.models import CustomerGroup
from conversations.access import Role
from conversations.db import utcnow
from conversations.models import ChannelAccount, StaffUser

from .deps import DEPS_KEY
from .i18n import gettext
from .policy import CAMPAIGNS, PUBLIC, allow
from .render import render
from .security import require_role, user_of

routes = web.RouteTableDef()
APPROVERS = (Role.ADMIN, Role.MANAGER)
LIVE_AHEAD = timedelta(minutes=1)  # a send due this soon makes the detail page watch it
GROUP_PICKER_LIMIT = 500


@dataclass
class BroadcastConsole:
    policies: PolicyRegistry = field(default_factory=PolicyRegistry)
    audiences: AudienceRegistry = field(default_factory=AudienceRegistry)
    settings: BroadcastSettings = field(default_factory=BroadcastSettings)
    # channels reached through staff-confirmed tasks (WeCom 企业群发)
    tasks: TaskChannels = field(default_factory=TaskChannels)
    # remind / cancel of those tasks (bot.wecom_tasks.WeComTaskControls); None: no buttons
    task_controls: TaskControls | None = None


BROADCAST_CONSOLE_KEY = web.AppKey("crmbot_broadcasts", BroadcastConsole)


def _console(request: web.Request) -> BroadcastConsole:
    found = request.app.get(BROADCAST_CONSOLE_KEY)
    return found if found is not None else BroadcastConsole()


def _ints(raw: str) -> list[int]:
    return [
        int(p) for p in raw.replace("，", ",").replace(" ", ",").split(",") if p.strip().isdigit()
    ]


@routes.get("/broadcasts")
@allow(CAMPAIGNS)
async def broadcast_list(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    async with deps.db.reading() as s:
        rows = list(await s.scalars(select(Broadcast).order_by(Broadcast.id.desc()).limit(100)))
    return await render(request, "broadcasts/list.html", {"broadcasts": rows})


@routes.get("/broadcasts/new")
@allow(CAMPAIGNS)
async def broadcast_form(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    async with deps.db.reading() as s:
        accounts = list(await s.scalars(select(ChannelAccount).order_by(ChannelAccount.id)))
        # the group picker of the "WeCom customer groups" audience (dismissed ones never)
        groups = list(
            await s.scalars(
                select(CustomerGroup)
                .where(CustomerGroup.dismissed_at.is_(None))
                .order_by(CustomerGroup.owner_userid, CustomerGroup.id)
                .limit(GROUP_PICKER_LIMIT)
            )
        )
    return await render(
        request,
        "broadcasts/form.html",
        {"accounts": accounts, "groups": groups, "problems": []},
    )


def _words(raw: str) -> list[str]:
    return [p for p in raw.replace("，", ",").replace(" ", ",").split(",") if p.strip()]


async def _group_audience(
    s: AsyncSession, form: Any, audience: dict[str, Any], channel_order: list[int]
) -> None:
    """owners (userids) and picked groups; a picked group brings its owner along."""
    chosen = [str(c) for c in form.getall("chat_ids", []) if str(c)]
    account_id = int(str(form.get("group_account_id", "") or 0)) or None
    rows = (
        (
            await s.execute(
                select(CustomerGroup.account_id, CustomerGroup.owner_userid)
                .where(CustomerGroup.chat_id.in_(chosen))
                .order_by(CustomerGroup.id)
            )
        ).all()
        if chosen
        else []
    )
    if account_id is None and rows:
        account_id = int(rows[0][0])
    if account_id is None:
        account_id = await s.scalar(
            select(ChannelAccount.id)
            .where(ChannelAccount.kind == "wecom.contact")
            .order_by(ChannelAccount.id)
            .limit(1)
        )
    owners = _words(str(form.get("owners", "")))
    owners += [o for a, o in rows if a == account_id and o not in owners]
    audience.update(account_id=account_id, owners=owners, chat_ids=chosen)
    if account_id is not None and not channel_order:
        channel_order.append(account_id)


@routes.post("/broadcasts")
@allow(CAMPAIGNS)
async def broadcast_create(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    form = await request.post()
    kind = str(form.get("audience_kind", "customers"))
    audience: dict[str, Any] = {"kind": kind}
    content: dict[str, Any] = {}
    if str(form.get("sms_text", "")).strip():
        content["sms"] = {"text": str(form["sms_text"]).strip()}
        if str(form.get("sms_template", "")).strip():
            content["sms"]["template_code"] = str(form["sms_template"]).strip()
    if str(form.get("email_subject", "")).strip():
        content["email"] = {
            "subject": str(form["email_subject"]).strip(),
            "html": str(form.get("email_html", "")),
        }
    if str(form.get("wecom_text", "")).strip():
        content["wecom"] = {"msgtype": "text", "text": str(form["wecom_text"]).strip()}
    schedule: dict[str, Any] = {"kind": str(form.get("schedule_kind", "now"))}
    for key in ("at", "cron", "end"):
        if str(form.get(key, "")).strip():
            schedule[key] = str(form[key]).strip()
    channel_order = _ints(str(form.get("channel_order", "")))
    async with deps.db.transaction() as s:
        if kind == "wecom_groups":
            await _group_audience(s, form, audience, channel_order)
        elif kind == "upload":
            uploaded = await import_contacts(s, str(form.get("upload", "")))
            audience["customer_ids"] = uploaded.customer_ids
        elif kind == "customers":
            audience["customer_ids"] = _ints(str(form.get("customer_ids", "")))
        elif kind == "salespeople":
            audience["staff_ids"] = _ints(str(form.get("staff_ids", "")))
        elif kind == "channel":
            audience["channel_kind"] = str(form.get("channel_kind", ""))
        else:
            audience.update(json.loads(str(form.get("audience_json", "") or "{}")))
        broadcast = await create_broadcast(
            s,
            Draft(
                name=str(form.get("name", "")).strip() or gettext("Untitled broadcast"),
                audience=audience,
                content=content,
                channel_order=channel_order,
                schedule=schedule,
                timezone=str(form.get("timezone", "")) or _console(request).settings.timezone,
                requires_approval=bool(form.get("requires_approval"))
                or _console(request).settings.approval_required,
            ),
            actor_id=user_of(request).id,
        )
    raise web.HTTPFound(f"/broadcasts/{broadcast.id}")


@routes.get("/broadcasts/{id:\\d+}")
@allow(CAMPAIGNS)
async def broadcast_detail(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    console = _console(request)
    broadcast_id = int(request.match_info["id"])
    sample = request.query.get("customer")
    window = timedelta(hours=console.settings.reply_window_hours)
    async with deps.db.reading() as s:
        broadcast = await s.get(Broadcast, broadcast_id)
        if broadcast is None:
            raise web.HTTPNotFound(text=gettext("No such broadcast."))
        runs = list(
            await s.scalars(
                select(BroadcastRun)
                .where(BroadcastRun.broadcast_id == broadcast_id)
                .order_by(BroadcastRun.id.desc())
            )
        )
        reports = {r.id: await progress(s, r.id, window) for r in runs}
        tasks = {r.id: await run_task_summaries(s, r.id, console.tasks) for r in runs}
        previews = (
            await preview(s, broadcast, int(sample), console.policies)
            if sample and sample.isdigit()
            else []
        )
        est = None
        if request.query.get("estimate"):
            est = await estimate(s, broadcast, console.policies, console.audiences, utcnow())
    # the page re-fetches its runs while one is under way or about to start
    active = {RunStatus.FREEZING.value, RunStatus.SENDING.value}
    live = any(r.status in active for r in runs) or (
        broadcast.status == BroadcastStatus.SCHEDULED.value
        and broadcast.next_fire_at is not None
        and broadcast.next_fire_at <= utcnow() + LIVE_AHEAD
    )
    partial = request.query.get("partial") == "runs"
    return await render(
        request,
        "broadcasts/_runs.html" if partial else "broadcasts/detail.html",
        {
            "live": live,
            "b": broadcast,
            "runs": runs,
            "reports": reports,
            "tasks": tasks,
            "task_controls": console.task_controls is not None,
            "previews": previews,
            "estimate": est,
            "sample": sample or "",
            "problems": request.query.getall("problem", []),
        },
    )


async def _broadcast(request: web.Request, s: AsyncSession) -> Broadcast:
    broadcast = await s.get(Broadcast, int(request.match_info["id"]))
    if broadcast is None:
        raise web.HTTPNotFound()
    return broadcast


def _back(broadcast_id: int, problems: list[str] | None = None) -> web.HTTPFound:
    query = "".join(f"&problem={p}" for p in problems or [])
    return web.HTTPFound(f"/broadcasts/{broadcast_id}?{query.lstrip('&')}")


@routes.post("/broadcasts/{id:\\d+}/{action:submit|approve|reject|cancel|test}")
@allow(CAMPAIGNS)
async def broadcast_action(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    console = _console(request)
    action = request.match_info["action"]
    if action in ("approve", "reject"):
        # checked before the broadcast's state, so a marketer learns nothing from the answer
        require_role(request, *APPROVERS)
    user: StaffUser = user_of(request)
    form = await request.post()
    now = utcnow()
    cancelled_runs: list[int] = []
    try:
        async with deps.db.transaction() as s:
            broadcast = await _broadcast(request, s)
            if action == "submit":
                await submit(
                    s,
                    broadcast,
                    actor_id=user.id,
                    policies=console.policies,
                    audiences=console.audiences,
                    now=now,
                )
            elif action == "approve":
                await approve(s, broadcast, approver=user, now=now)
            elif action == "reject":
                await reject(s, broadcast, approver=user, note=str(form.get("note", "")))
            elif action == "cancel":
                cancelled_runs = await _open_runs(s, broadcast.id)
                await cancel_broadcast(s, broadcast, actor_id=user.id, now=now)
            else:
                await send_test_message(
                    s,
                    broadcast,
                    actor=user,
                    account_id=int(str(form.get("account_id", 0))),
                    address=str(form.get("address", "")).strip(),
                    sample_customer_id=int(str(form.get("customer_id", 0) or 0)),
                    policies=console.policies,
                )
    except BroadcastError as exc:
        raise _back(int(request.match_info["id"]), exc.problems) from None
    except PermissionError as exc:
        raise web.HTTPForbidden(text=str(exc)) from None
    for run_id in cancelled_runs:
        await _cancel_run_tasks(request, run_id)
    deps.wake_outbox()
    raise _back(int(request.match_info["id"]))


async def _open_runs(s: AsyncSession, broadcast_id: int) -> list[int]:
    return list(
        (
            await s.scalars(
                select(BroadcastRun.id).where(
                    BroadcastRun.broadcast_id == broadcast_id,
                    BroadcastRun.status.in_(
                        (RunStatus.FREEZING.value, RunStatus.SENDING.value, RunStatus.PAUSED.value)
                    ),
                )
            )
        ).all()
    )


async def _cancel_run_tasks(request: web.Request, run_id: int) -> None:
    """After a run is cancelled (committed): its provider tasks not yet sent are
    cancelled too, then their recipients settle (the engine no longer drives the run)."""
    console = _console(request)
    if console.task_controls is None:
        return
    await console.task_controls.cancel_run(run_id)
    async with request.app[DEPS_KEY].db.transaction() as s:
        await settle_tasks(s, run_id, console.tasks)


@routes.post("/broadcasts/runs/{id:\\d+}/{action:pause|resume|cancel}")
@allow(CAMPAIGNS)
async def run_action(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    action = request.match_info["action"]
    user = user_of(request)
    try:
        async with deps.db.transaction() as s:
            run = await s.get(BroadcastRun, int(request.match_info["id"]))
            if run is None:
                raise web.HTTPNotFound()
            broadcast_id = run.broadcast_id
            if action == "pause":
                await pause_run(s, run, actor_id=user.id)
            elif action == "resume":
                await resume_run(s, run, actor_id=user.id, now=utcnow())
            else:
                await cancel_run(s, run, actor_id=user.id, now=utcnow())
    except BroadcastError as exc:
        raise _back(broadcast_id, exc.problems) from None
    if action == "cancel":
        await _cancel_run_tasks(request, run.id)
    deps.wake_outbox()
    raise _back(broadcast_id)


@routes.post("/broadcasts/runs/{id:\\d+}/tasks/{task:\\d+}/remind")
@allow(CAMPAIGNS)
async def task_remind(request: web.Request) -> web.Response:
    """Remind the salesperson of a task (企业群发: at most 3 times per 24 h)."""
    return await _task_action(request, "remind")


@routes.post("/broadcasts/runs/{id:\\d+}/tasks/{task:\\d+}/cancel")
@allow(CAMPAIGNS)
async def task_cancel(request: web.Request) -> web.Response:
    """Cancel one task: members who have not sent it can no longer."""
    return await _task_action(request, "cancel")


async def _task_action(request: web.Request, action: str) -> web.Response:
    deps = request.app[DEPS_KEY]
    controls = _console(request).task_controls
    run_id, task_id = int(request.match_info["id"]), int(request.match_info["task"])
    async with deps.db.reading() as s:
        run = await s.get(BroadcastRun, run_id)
    if run is None or controls is None:
        raise web.HTTPNotFound()
    try:
        if action == "remind":
            await controls.remind(run_id, task_id)
        else:
            await controls.cancel(run_id, task_id)
    except TaskControlError as exc:
        raise _back(run.broadcast_id, [str(exc)]) from None
    raise _back(run.broadcast_id)


@routes.get("/broadcasts/runs/{id:\\d+}/export.csv")
@allow(CAMPAIGNS)
async def run_export(request: web.Request) -> web.StreamResponse:
    deps = request.app[DEPS_KEY]
    run_id = int(request.match_info["id"])
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="broadcast-run-{run_id}.csv"',
        }
    )
    await response.prepare(request)
    async with deps.db.reading() as s:
        async for chunk in export_csv(s, run_id):
            await response.write(chunk.encode())
    await response.write_eof()
    return response


@routes.get("/r/{token}")
@allow(PUBLIC)
async def click(request: web.Request) -> web.Response:
    """Public: count a click on a broadcast link and redirect to the real address."""
    deps = request.app[DEPS_KEY]
    async with deps.db.transaction() as s:
        target = await record_click(s, deps.secret_key, request.match_info["token"])
    if target is None:
        raise web.HTTPNotFound(text="unknown link")
    raise web.HTTPFound(target)
