"""One customer's timeline across channels, replying, notes, quick replies, assignment,
close/reopen, the bot/human switch and permission-checked media."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from conversations import workflow
from conversations.access import AccessDenied, Role, Viewer, conversation_scope
from conversations.actions import mark_read, queue_outbound
from conversations.models import ChannelAccount, Conversation, Customer, Message, StaffUser
from conversations.notes import (
    add_note,
    delete_quick_reply,
    fill_variables,
    notes_of,
    quick_replies_for,
    save_quick_reply,
)
from conversations.queries import open_conversation
from conversations.search import index_message_ids
from conversations.types import Purpose, SenderType

from .deps import DEPS_KEY
from .forms import denied, int_or_none
from .i18n import gettext
from .live import notify_message
from .policy import STAFF, allow
from .render import panels, render
from .security import DENIED_CONVERSATION, user_of, viewer_of

routes = web.RouteTableDef()
MAX_REPLY_CHARS = 4000
TIMELINE_LIMIT = 300


async def _open(
    request: web.Request, s: AsyncSession, conversation_id: int, *, audit_view: bool = False
) -> Conversation:
    """The conversation if the viewer may see it; 404/403 (audited) otherwise."""
    try:
        return await open_conversation(
            s, viewer_of(request), conversation_id, ip=request.remote, record_view=audit_view
        )
    except LookupError:
        raise web.HTTPNotFound(text=gettext("No such conversation.")) from None
    except AccessDenied:
        request[DENIED_CONVERSATION] = conversation_id  # audited after the rollback
        raise web.HTTPForbidden(text=gettext("You may not see this conversation.")) from None


async def _timeline(
    s: AsyncSession, viewer: Viewer, customer_id: int, after: int = 0
) -> Sequence[tuple[Message, str]]:
    """Messages of every conversation of the customer the viewer may see, oldest first,
    each with its account kind (one timeline across channels)."""
    rows = (
        await s.execute(
            select(Message, ChannelAccount.kind)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .join(ChannelAccount, ChannelAccount.id == Message.account_id)
            .where(
                Conversation.customer_id == customer_id,
                conversation_scope(viewer),
                Message.id > after,
            )
            .order_by(Message.id.desc())
            .limit(TIMELINE_LIMIT)
        )
    ).all()
    return [(m, str(k)) for m, k in reversed(rows)]


def _media_of(message: Message) -> dict[str, str] | None:
    media = message.payload.get("media") if isinstance(message.payload, dict) else None
    if isinstance(media, dict) and isinstance(media.get("sha256"), str):
        return {k: str(v) for k, v in media.items()}
    return None


@routes.get("/conversations/{id:\\d+}")
@allow(STAFF)
async def conversation_page(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    viewer = viewer_of(request)
    conversation_id = int(request.match_info["id"])
    async with deps.db.transaction() as s:
        conv = await _open(request, s, conversation_id, audit_view=True)
        timeline = await _timeline(s, viewer, conv.customer_id)
        customer = await s.get(Customer, conv.customer_id)
        account = await s.get(ChannelAccount, conv.account_id)
        assignee = await s.get(StaffUser, conv.assignee_id) if conv.assignee_id else None
        notes = await notes_of(s, conversation_id)
        authors = {
            u.id: u.display_name
            for u in (
                await s.scalars(
                    select(StaffUser).where(StaffUser.id.in_({n.author_id for n in notes}))
                )
            ).all()
        }
        staff = await workflow.assignable_staff(s, viewer)
        replies = await quick_replies_for(s, viewer)
        await mark_read(s, conversation_id)
    assert customer is not None and account is not None
    variables = {
        "customer_name": customer.display_name,
        "salesperson_name": user_of(request).display_name,
    }
    return await render(
        request,
        "conversation.html",
        {
            "conv": conv,
            "timeline": [(m, k, _media_of(m)) for m, k in timeline],
            "last_id": timeline[-1][0].id if timeline else 0,
            "customer": customer,
            "account": account,
            "assignee": assignee,
            "notes": notes,
            "authors": authors,
            "staff": staff,
            "quick_replies": [(q, fill_variables(q.body, variables)) for q in replies],
            "labels": deps.channel_labels,
            "error": request.query.get("error"),
            "idempotency_key": uuid.uuid4().hex,
            "panels": panels([await p(request, conversation_id) for p in deps.conversation_panels]),
        },
    )


@routes.get("/conversations/{id:\\d+}/messages")
@allow(STAFF)
async def messages_fragment(request: web.Request) -> web.Response:
    """Timeline items after a message id, for the live script to append."""
    deps = request.app[DEPS_KEY]
    viewer = viewer_of(request)
    conversation_id = int(request.match_info["id"])
    after = int_or_none(request.query.get("after")) or 0
    async with deps.db.transaction() as s:
        conv = await _open(request, s, conversation_id)
        timeline = await _timeline(s, viewer, conv.customer_id, after)
        await mark_read(s, conversation_id)
    return await render(
        request,
        "timeline_items.html",
        {"timeline": [(m, k, _media_of(m)) for m, k in timeline], "labels": deps.channel_labels},
    )


@routes.post("/conversations/{id:\\d+}/reply")
@allow(STAFF)
async def reply(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    viewer = viewer_of(request)
    conversation_id = int(request.match_info["id"])
    form = await request.post()
    body = str(form.get("text", "")).strip()
    if not body:
        raise web.HTTPFound(f"/conversations/{conversation_id}?error=empty")
    if len(body) > MAX_REPLY_CHARS:
        raise web.HTTPFound(f"/conversations/{conversation_id}?error=too_long")
    # the form carries a one-time key so a double submit queues one message
    key = str(form.get("idempotency_key") or uuid.uuid4().hex)[:64]
    async with deps.db.transaction() as s:
        conv = await _open(request, s, conversation_id)
        if conv.assignee_id is None and viewer.role == Role.SALES:
            conv.assignee_id = viewer.staff_id  # replying to an unassigned customer takes it
        if conv.mode != "human":
            await workflow.set_mode(s, viewer, conversation_id, "human")
        message = await queue_outbound(
            s,
            conv,
            text=body,
            purpose=Purpose.REPLY,
            sender_type=SenderType.STAFF,
            sender_staff_id=viewer.staff_id,
            idempotency_key=f"reply:{viewer.staff_id}:{key}",
        )
        if message is not None:
            await index_message_ids(s, [message.id])
    deps.wake_outbox()
    if message is not None:
        await notify_message(deps.live, deps.db, [message.id])
    if request.headers.get("X-Requested-With") == "fetch":
        return web.json_response({"ok": True, "message_id": message.id if message else None})
    raise web.HTTPFound(f"/conversations/{conversation_id}#bottom")


@routes.post("/conversations/{id:\\d+}/notes")
@allow(STAFF)
async def note(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    conversation_id = int(request.match_info["id"])
    body = str((await request.post()).get("text", ""))
    async with deps.db.transaction() as s:
        await _open(request, s, conversation_id)
        try:
            await add_note(s, conversation_id, viewer_of(request).staff_id, body)
        except ValueError:
            raise web.HTTPFound(f"/conversations/{conversation_id}?error=note") from None
    raise web.HTTPFound(f"/conversations/{conversation_id}#notes")


@routes.post("/conversations/{id:\\d+}/assign")
@allow(STAFF)
async def assign(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    conversation_id = int(request.match_info["id"])
    target = int_or_none((await request.post()).get("assignee"))
    async with deps.db.transaction() as s:
        await _open(request, s, conversation_id)
        try:
            await workflow.assign(s, viewer_of(request), conversation_id, target, ip=request.remote)
        except AccessDenied as exc:
            raise denied(exc) from None
        except LookupError:
            raise web.HTTPBadRequest(text=gettext("No such salesperson.")) from None
    raise web.HTTPFound(f"/conversations/{conversation_id}")


Switch = Callable[[AsyncSession, Viewer, int, str], Awaitable[Conversation]]


async def _switch(request: web.Request, field: str, change: Switch) -> web.Response:
    """One posted value (status, mode) through its workflow function; 400 if invalid."""
    deps = request.app[DEPS_KEY]
    conversation_id = int(request.match_info["id"])
    value = str((await request.post()).get(field, ""))
    async with deps.db.transaction() as s:
        await _open(request, s, conversation_id)
        try:
            await change(s, viewer_of(request), conversation_id, value)
        except ValueError:
            raise web.HTTPBadRequest() from None
    raise web.HTTPFound(f"/conversations/{conversation_id}")


@routes.post("/conversations/{id:\\d+}/status")
@allow(STAFF)
async def status(request: web.Request) -> web.Response:
    return await _switch(request, "status", workflow.set_status)


@routes.post("/conversations/{id:\\d+}/mode")
@allow(STAFF)
async def mode(request: web.Request) -> web.Response:
    return await _switch(request, "mode", workflow.set_mode)


@routes.get("/media/{message_id:\\d+}")
@allow(STAFF)
async def media(request: web.Request) -> web.StreamResponse:
    """A message's media file, only to those who may see its conversation."""
    deps = request.app[DEPS_KEY]
    if deps.media is None:
        raise web.HTTPNotFound()
    async with deps.db.transaction() as s:
        message = await s.get(Message, int(request.match_info["message_id"]))
        if message is None:
            raise web.HTTPNotFound()
        await _open(request, s, message.conversation_id)
    info = _media_of(message)
    if info is None:
        raise web.HTTPNotFound()
    try:
        path = deps.media.path_for(info["sha256"])
    except ValueError:
        raise web.HTTPNotFound() from None
    if not path.exists():
        raise web.HTTPNotFound()
    mime = info.get("mime", "application/octet-stream")
    inline = mime.startswith(("image/", "audio/", "video/"))
    filename = info.get("filename") or info["sha256"][:12]
    return web.FileResponse(
        path,
        headers={
            "Content-Type": mime,
            "Content-Disposition": ("inline" if inline else "attachment")
            + f"; filename*=UTF-8''{_quote(filename)}",
            "Cache-Control": "private, max-age=3600",
        },
    )


def _quote(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="")


@routes.get("/quick-replies")
@allow(STAFF)
async def quick_replies_page(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    async with deps.db.reading() as s:
        replies = await quick_replies_for(s, viewer_of(request))
    return await render(
        request, "quick_replies.html", {"replies": replies, "error": request.query.get("error")}
    )


@routes.post("/quick-replies")
@allow(STAFF)
async def quick_reply_create(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    form = await request.post()
    async with deps.db.transaction() as s:
        try:
            await save_quick_reply(
                s,
                viewer_of(request),
                shortcut=str(form.get("shortcut", "")),
                title=str(form.get("title", "")),
                body=str(form.get("body", "")),
                shared=form.get("shared") == "1",
            )
        except AccessDenied as exc:
            raise denied(exc) from None
        except ValueError:
            raise web.HTTPFound("/quick-replies?error=1") from None
    raise web.HTTPFound("/quick-replies")


@routes.post("/quick-replies/{id:\\d+}/delete")
@allow(STAFF)
async def quick_reply_delete(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    async with deps.db.transaction() as s:
        try:
            await delete_quick_reply(s, viewer_of(request), int(request.match_info["id"]))
        except AccessDenied as exc:
            raise denied(exc) from None
        except LookupError:
            raise web.HTTPNotFound() from None
    raise web.HTTPFound("/quick-replies")
