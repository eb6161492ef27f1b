"""The unified inbox, a conversation's timeline and replying through the original channel."""

from __future__ import annotations

import uuid

from aiohttp import web
from sqlalchemy import select

from conversations.access import AccessDenied
from conversations.actions import audit, mark_read, queue_outbound
from conversations.models import ChannelAccount, Customer, StaffUser
from conversations.queries import InboxFilter, history, inbox, visible_conversation
from conversations.types import Purpose, SenderType

from .deps import DEPS_KEY
from .i18n import gettext
from .render import render
from .security import viewer_of

routes = web.RouteTableDef()
MAX_REPLY_CHARS = 4000


@routes.get("/")
async def home(_request: web.Request) -> web.Response:
    raise web.HTTPFound("/inbox")


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


@routes.get("/inbox")
async def inbox_page(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    viewer = viewer_of(request)
    scope = request.query.get("scope", "all")
    flt = InboxFilter(
        account_id=_int(request.query.get("account")),
        mine_only=scope == "mine",
        unassigned_only=scope == "unassigned",
        mode=request.query.get("mode") or None,
    )
    async with deps.db.reading() as s:
        rows = await inbox(s, viewer, flt)
        accounts = (await s.scalars(select(ChannelAccount).order_by(ChannelAccount.id))).all()
    return await render(
        request,
        "inbox.html",
        {
            "rows": rows,
            "accounts": accounts,
            "scope": scope,
            "account_id": flt.account_id,
            "labels": deps.channel_labels,
        },
    )


@routes.get("/conversations/{id:\\d+}")
async def conversation_page(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    viewer = viewer_of(request)
    conversation_id = int(request.match_info["id"])
    async with deps.db.transaction() as s:
        try:
            conv = await visible_conversation(s, viewer, conversation_id)
        except LookupError:
            raise web.HTTPNotFound(text=gettext("No such conversation.")) from None
        except AccessDenied:
            await audit(
                s,
                "conversation_denied",
                actor_id=viewer.staff_id,
                target_type="conversation",
                target_id=conversation_id,
                ip=request.remote,
            )
            raise web.HTTPForbidden(text=gettext("You may not see this conversation.")) from None
        if conv.assignee_id not in (None, viewer.staff_id):
            # managers reviewing someone else's conversation: audited (issue 9)
            await audit(
                s,
                "conversation_viewed",
                actor_id=viewer.staff_id,
                target_type="conversation",
                target_id=conversation_id,
                ip=request.remote,
            )
        messages = await history(s, conversation_id)
        customer = await s.get(Customer, conv.customer_id)
        account = await s.get(ChannelAccount, conv.account_id)
        assignee = await s.get(StaffUser, conv.assignee_id) if conv.assignee_id else None
        await mark_read(s, conversation_id)
    return await render(
        request,
        "conversation.html",
        {
            "conv": conv,
            "messages": messages,
            "customer": customer,
            "account": account,
            "assignee": assignee,
            "labels": deps.channel_labels,
            "error": request.query.get("error"),
        },
    )


@routes.post("/conversations/{id:\\d+}/reply")
async def reply(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    viewer = viewer_of(request)
    conversation_id = int(request.match_info["id"])
    form = await request.post()
    text = str(form.get("text", "")).strip()
    if not text:
        raise web.HTTPFound(f"/conversations/{conversation_id}?error=empty")
    if len(text) > MAX_REPLY_CHARS:
        raise web.HTTPFound(f"/conversations/{conversation_id}?error=too_long")
    # the form carries a one-time key so a double submit queues one message
    key = str(form.get("idempotency_key") or uuid.uuid4().hex)[:64]
    async with deps.db.transaction() as s:
        try:
            conv = await visible_conversation(s, viewer, conversation_id)
        except LookupError:
            raise web.HTTPNotFound() from None
        except AccessDenied:
            raise web.HTTPForbidden(text=gettext("You may not see this conversation.")) from None
        if conv.assignee_id is None and viewer.role.value == "sales":
            conv.assignee_id = viewer.staff_id  # replying to an unassigned customer takes it
        conv.mode = "human"
        await queue_outbound(
            s,
            conv,
            text=text,
            purpose=Purpose.REPLY,
            sender_type=SenderType.STAFF,
            sender_staff_id=viewer.staff_id,
            idempotency_key=f"reply:{viewer.staff_id}:{key}",
        )
    deps.wake_outbox()
    raise web.HTTPFound(f"/conversations/{conversation_id}#bottom")
