"""Event handlers for customer groups, registered in bot/wiring.py next to
"wecom.contacts": change_external_chat (doc 92130, 客户群事件) keeps groups and members
current, and archived group messages (会话存档 records with a roomid) are linked to
their group's timeline. Both run inside the pipeline's transaction and do no network
I/O: what only groupchat/get can tell (owner, name, notice, member names) is marked
`needs_refresh` for the refresh job (sync.refresh_marked_groups).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from channels.wecom.handlers import contact_account
from channels.wecom.kf_inbound import KINDS
from conversations.handlers import EventContext
from conversations.types import MessageKind

from .models import GroupMessage
from .roster import group_for, member_joined, member_left, member_type_of

log = logging.getLogger(__name__)

CHAT_EVENT = "wecom.change_external_chat."
ARCHIVED_GROUP_MESSAGE = "wecom.archive.group_message"
# every (ChangeType, UpdateDetail) doc 92130 documents; a meta-test wants a fixture each
GROUP_CHANGES = frozenset(
    [
        ("create", ""),
        ("update", "add_member"),
        ("update", "del_member"),
        ("update", "change_owner"),
        ("update", "change_name"),
        ("update", "change_notice"),
        ("dismiss", ""),
    ]
)


def _int(fields: Mapping[str, Any], name: str) -> int | None:
    try:
        return int(fields[name])
    except (KeyError, TypeError, ValueError):
        return None


def changed_members(fields: Mapping[str, Any]) -> list[str]:
    """MemChangeList's <Item>s (the parser joins nested items with commas)."""
    return [m for m in str(fields.get("MemChangeList") or "").split(",") if m.strip()]


async def on_group_chat_event(ctx: EventContext) -> None:
    """Groups and members from change_external_chat (create / update / dismiss)."""
    event = ctx.event
    if not event.event_type.startswith(CHAT_EVENT):
        return
    account = await contact_account(ctx)
    if account is None:
        log.warning(
            "客户群 event %s: no wecom.contact account for this corp; stored only", event.id
        )
        return
    fields = event.payload
    chat_id = str(fields.get("ChatId") or "")
    if not chat_id:
        log.warning("客户群 event %s without ChatId: stored only", event.id)
        return
    change = event.event_type.removeprefix(CHAT_EVENT)
    detail = str(fields.get("UpdateDetail") or "")
    group = await group_for(ctx.session, account, chat_id)
    when = event.occurred_at
    if change == "create":
        group.created_at = group.created_at or when
        group.needs_refresh = True  # name, owner and first members come from groupchat/get
    elif change == "dismiss":
        group.dismissed_at = when
    elif change == "update":
        members = changed_members(fields)
        if detail == "add_member":
            for member_id in members:
                await member_joined(
                    ctx.session,
                    group,
                    member_id,
                    when,
                    scene=_int(fields, "JoinScene"),
                    source="event",
                )
        elif detail == "del_member":
            for member_id in members:
                await member_left(
                    ctx.session,
                    group,
                    member_id,
                    when,
                    quit_scene=_int(fields, "QuitScene"),
                    source="event",
                )
        count = _int(fields, "MemChangeCnt") or 0
        # groupchat/get tells the new owner, name and notice, a new customer's name and
        # unionid, and the members of a change larger than MemChangeList carries
        if detail != "del_member" or count > len(members):
            group.needs_refresh = True
    log.info("客户群 event=%s chat=%s change=%s %s", event.id, chat_id, change, detail or "")


def _summary(kind: MessageKind, part: Mapping[str, Any]) -> str:
    if kind == MessageKind.TEXT:
        return str(part.get("content", ""))
    if kind in (MessageKind.LINK, MessageKind.LOCATION):
        return str(part.get("title") or part.get("address") or "")
    if kind == MessageKind.FILE:
        return str(part.get("filename", ""))
    return ""


async def on_archived_group_message(ctx: EventContext) -> None:
    """Link an archived group message (roomid) to its group chat's timeline (read-only)."""
    event = ctx.event
    if event.event_type != ARCHIVED_GROUP_MESSAGE:
        return
    record = event.payload
    chat_id = str(record.get("roomid") or "")
    if not chat_id:
        return
    exists = await ctx.session.scalar(
        select(GroupMessage.id).where(GroupMessage.event_id == event.id)
    )
    if exists is not None:
        return
    msgtype = str(record.get("msgtype") or "")
    kind = KINDS.get(msgtype, MessageKind.UNKNOWN)
    part = record.get(msgtype)
    sender = str(record.get("from") or "")
    try:
        sent_at = datetime.fromtimestamp(int(record.get("msgtime", 0)) / 1000, UTC)
    except (TypeError, ValueError):
        sent_at = event.occurred_at
    ctx.session.add(
        GroupMessage(
            event_id=event.id,
            corp_id=str((ctx.account.config or {}).get("corp_id") or ""),
            chat_id=chat_id,
            sender=sender,
            sender_type=member_type_of(sender),
            kind=kind.value,
            text=_summary(kind, part if isinstance(part, Mapping) else {}),
            sent_at=sent_at,
        )
    )
