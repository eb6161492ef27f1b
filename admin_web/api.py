"""JSON API /api/v1 (documented in admin_web/openapi.yaml). A bearer token acts as its
user: the same service-layer permissions as the console, the same audit trail."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy import select

from conversations import workflow
from conversations.access import AccessDenied, conversation_scope
from conversations.actions import queue_outbound
from conversations.models import Conversation, Identity, Message
from conversations.notes import add_note
from conversations.queries import (
    InboxFilter,
    history,
    inbox,
    open_conversation,
    visible_customer,
)
from conversations.search import SearchFilter, index_message_ids, search_messages
from conversations.stats import staff_statistics
from conversations.types import Purpose, SenderType

from .deps import DEPS_KEY
from .forms import day_end, day_start, int_or_none
from .live import notify_message
from .policy import ALL_ROLES, MANAGERS, PUBLIC, STAFF, allow
from .security import DENIED_CONVERSATION, viewer_of

routes = web.RouteTableDef()
OPENAPI = Path(__file__).parent / "openapi.yaml"
MAX_LIMIT = 200


def _error(status: type[web.HTTPException], code: str, detail: str = "") -> web.HTTPException:
    return status(
        text=json.dumps({"error": code, "detail": detail}), content_type="application/json"
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _limit(request: web.Request, default: int = 50) -> tuple[int, int]:
    limit = min(max(int_or_none(request.query.get("limit")) or default, 1), MAX_LIMIT)
    return limit, max(int_or_none(request.query.get("offset")) or 0, 0)


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise _error(web.HTTPBadRequest, "bad_json") from None
    if not isinstance(data, dict):
        raise _error(web.HTTPBadRequest, "bad_json", "expected an object")
    return data


def _conversation(c: Conversation) -> dict[str, Any]:
    return {
        "id": c.id,
        "customer_id": c.customer_id,
        "account_id": c.account_id,
        "assignee_id": c.assignee_id,
        "status": c.status,
        "mode": c.mode,
        "unread": c.unread_count,
        "last_message_at": _iso(c.last_message_at),
        "preview": c.last_preview,
    }


def _message(m: Message) -> dict[str, Any]:
    return {
        "id": m.id,
        "conversation_id": m.conversation_id,
        "direction": m.direction,
        "kind": m.kind,
        "text": m.text,
        "sender_type": m.sender_type,
        "sender_staff_id": m.sender_staff_id,
        "status": m.status,
        "error_code": m.error_code,
        "status_reason": m.status_reason,
        "occurred_at": _iso(m.occurred_at),
    }


async def _open(request: web.Request, s: Any, conversation_id: int, record: bool) -> Conversation:
    try:
        return await open_conversation(
            s, viewer_of(request), conversation_id, ip=request.remote, record_view=record
        )
    except LookupError:
        raise _error(web.HTTPNotFound, "not_found") from None
    except AccessDenied:
        request[DENIED_CONVERSATION] = conversation_id
        raise _error(web.HTTPForbidden, "forbidden", "not your conversation") from None


@routes.get("/api/v1/openapi.yaml")
@allow(PUBLIC)
async def openapi(_request: web.Request) -> web.Response:
    return web.Response(body=OPENAPI.read_bytes(), content_type="application/yaml")


@routes.get("/api/v1/me")
@allow(ALL_ROLES)
async def me(request: web.Request) -> web.Response:
    v = viewer_of(request)
    return web.json_response({"id": v.staff_id, "role": v.role.value, "team_id": v.team_id})


@routes.get("/api/v1/conversations")
@allow(STAFF)
async def conversations(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    limit, offset = _limit(request)
    q = request.query
    flt = InboxFilter(
        account_id=int_or_none(q.get("account_id")),
        channel_kind=q.get("channel") or None,
        mine_only=q.get("scope") == "mine",
        unassigned_only=q.get("scope") == "unassigned",
        status=q.get("status") or None,
        mode=q.get("mode") or None,
        limit=limit,
        offset=offset,
    )
    async with deps.db.reading() as s:
        rows = await inbox(s, viewer_of(request), flt)
    return web.json_response(
        {
            "items": [
                {
                    "id": r.conversation_id,
                    "customer_id": r.customer_id,
                    "customer_name": r.customer_name,
                    "account_id": r.account_id,
                    "channel": r.account_kind,
                    "assignee": r.assignee_name,
                    "status": r.status,
                    "mode": r.mode,
                    "unread": r.unread,
                    "preview": r.preview,
                    "last_message_at": _iso(r.last_message_at),
                }
                for r in rows
            ],
            "limit": limit,
            "offset": offset,
        }
    )


@routes.get("/api/v1/conversations/{id:\\d+}")
@allow(STAFF)
async def conversation(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    async with deps.db.transaction() as s:
        conv = await _open(request, s, int(request.match_info["id"]), record=True)
    return web.json_response(_conversation(conv))


@routes.get("/api/v1/conversations/{id:\\d+}/messages")
@allow(STAFF)
async def messages(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    limit, _ = _limit(request, 100)
    async with deps.db.transaction() as s:
        conv = await _open(request, s, int(request.match_info["id"]), record=True)
        rows = await history(s, conv.id, limit=limit)
    return web.json_response({"items": [_message(m) for m in rows]})


@routes.post("/api/v1/conversations/{id:\\d+}/messages")
@allow(STAFF)
async def send(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    viewer = viewer_of(request)
    data = await _body(request)
    text = str(data.get("text", "")).strip()
    if not text or len(text) > 4000:
        raise _error(web.HTTPBadRequest, "bad_text", "1 to 4000 characters")
    key = str(data.get("idempotency_key") or uuid.uuid4().hex)[:64]
    async with deps.db.transaction() as s:
        conv = await _open(request, s, int(request.match_info["id"]), record=False)
        message = await queue_outbound(
            s,
            conv,
            text=text,
            purpose=Purpose.REPLY,
            sender_type=SenderType.STAFF,
            sender_staff_id=viewer.staff_id,
            idempotency_key=f"api:{viewer.staff_id}:{key}",
        )
        if message is not None:
            await index_message_ids(s, [message.id])
    deps.wake_outbox()
    if message is None:
        return web.json_response({"duplicate": True}, status=200)
    await notify_message(deps.live, deps.db, [message.id])
    return web.json_response(_message(message), status=201)


@routes.post("/api/v1/conversations/{id:\\d+}/notes")
@allow(STAFF)
async def note(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    data = await _body(request)
    async with deps.db.transaction() as s:
        conv = await _open(request, s, int(request.match_info["id"]), record=False)
        try:
            row = await add_note(s, conv.id, viewer_of(request).staff_id, str(data.get("text", "")))
        except ValueError as exc:
            raise _error(web.HTTPBadRequest, "bad_text", str(exc)) from None
    return web.json_response({"id": row.id}, status=201)


@routes.post("/api/v1/conversations/{id:\\d+}/assign")
@allow(STAFF)
async def assign(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    data = await _body(request)
    conversation_id = int(request.match_info["id"])
    async with deps.db.transaction() as s:
        await _open(request, s, conversation_id, record=False)
        try:
            conv = await workflow.assign(
                s,
                viewer_of(request),
                conversation_id,
                int_or_none(data.get("assignee_id")),
                ip=request.remote,
            )
        except AccessDenied as exc:
            raise _error(web.HTTPForbidden, "forbidden", str(exc)) from None
        except LookupError:
            raise _error(web.HTTPBadRequest, "no_such_staff") from None
    return web.json_response(_conversation(conv))


@routes.post("/api/v1/conversations/{id:\\d+}/status")
@allow(STAFF)
async def status(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    data = await _body(request)
    conversation_id = int(request.match_info["id"])
    async with deps.db.transaction() as s:
        await _open(request, s, conversation_id, record=False)
        try:
            conv = await workflow.set_status(
                s, viewer_of(request), conversation_id, str(data.get("status", ""))
            )
            if "mode" in data:
                conv = await workflow.set_mode(
                    s, viewer_of(request), conversation_id, str(data["mode"])
                )
        except ValueError:
            raise _error(web.HTTPBadRequest, "bad_value") from None
    return web.json_response(_conversation(conv))


@routes.get("/api/v1/customers/{id:\\d+}")
@allow(STAFF)
async def customer(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    viewer = viewer_of(request)
    customer_id = int(request.match_info["id"])
    async with deps.db.reading() as s:
        try:
            row = await visible_customer(s, viewer, customer_id)
        except LookupError:
            raise _error(web.HTTPNotFound, "not_found") from None
        except AccessDenied:
            raise _error(web.HTTPForbidden, "forbidden") from None
        convs = (
            await s.scalars(
                select(Conversation).where(
                    Conversation.customer_id == customer_id, conversation_scope(viewer)
                )
            )
        ).all()
        identities = (
            await s.scalars(select(Identity).where(Identity.customer_id == customer_id))
        ).all()
    return web.json_response(
        {
            "id": row.id,
            "name": row.display_name,
            "phone": row.phone,
            "email": row.email,
            "owner_id": row.owner_id,
            "profile": row.profile,
            "identities": [
                {
                    "channel": i.channel_kind,
                    "account_id": i.account_id,
                    "external_id": i.external_id,
                }
                for i in identities
            ],
            "conversations": [_conversation(c) for c in convs],
        }
    )


@routes.get("/api/v1/search")
@allow(STAFF)
async def search(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    limit, offset = _limit(request, 20)
    q = request.query
    flt = SearchFilter(
        query=q.get("q", "")[:200],
        staff_id=int_or_none(q.get("staff_id")),
        channel_kind=q.get("channel") or None,
        account_id=int_or_none(q.get("account_id")),
        since=day_start(q.get("from")),
        until=day_end(q.get("to")),
        limit=limit,
        offset=offset,
    )
    async with deps.db.reading() as s:
        hits = await search_messages(s, viewer_of(request), flt)
    return web.json_response(
        {
            "items": [
                {
                    "message_id": h.message_id,
                    "conversation_id": h.conversation_id,
                    "customer_name": h.customer_name,
                    "channel": h.account_kind,
                    "account": h.account_name,
                    "assignee": h.assignee_name,
                    "direction": h.direction,
                    "text": h.text,
                    "occurred_at": _iso(h.occurred_at),
                }
                for h in hits
            ]
        }
    )


@routes.get("/api/v1/stats/staff")
@allow(MANAGERS)
async def stats(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    since = day_start(request.query.get("from"))
    until = day_end(request.query.get("to"))
    if since is None or until is None:
        raise _error(web.HTTPBadRequest, "period", "from and to (YYYY-MM-DD) are required")
    async with deps.db.reading() as s:
        rows = await staff_statistics(s, viewer_of(request), since, until)
    return web.json_response(
        {
            "items": [
                {
                    "staff_id": r.staff_id,
                    "name": r.name,
                    "conversations_handled": r.conversations_handled,
                    "replies": r.replies,
                    "first_response_avg_seconds": r.first_response_avg,
                    "response_avg_seconds": r.response_avg,
                    "unanswered": r.unanswered,
                    "customers_gained": r.customers_gained,
                    "customers_lost": r.customers_lost,
                }
                for r in rows
            ]
        }
    )
