"""Full sync of customer groups (first connect, on demand) and the refresh of groups an
event marked.

groupchat/list (doc 92120) pages through the corp's groups with a `cursor` (≤1000 per
page); groupchat/get (doc 92122, need_name=1) gives each group's owner, name, notice and
members. The pass's position is a ChannelCursor saved in the SAME transaction as the
page's groups (DESIGN.md invariant 2, as contact_sync does), so a crash or restart
resumes at the page after the last one stored.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from channels.wecom.api import WeComApi
from channels.wecom.errors import WeComApiError
from conversations.actions import load_cursor, save_cursor
from conversations.db import Database, utcnow
from conversations.models import ChannelAccount

from .models import CustomerGroup
from .roster import apply_detail

log = logging.getLogger(__name__)

CURSOR = "group_sync"
PAGE_LIMIT = 1000  # groupchat/list: limit 1 ~ 1000
LIST = "/cgi-bin/externalcontact/groupchat/list"
GET = "/cgi-bin/externalcontact/groupchat/get"
# a group that vanished between list and get: skip it, the pass goes on
GONE_ERRORS = frozenset({86001, 90501})


@dataclass
class GroupSyncReport:
    pages: int = 0
    groups: int = 0
    skipped: int = 0
    resumed: bool = False
    finished: bool = False


async def fetch_group(api: WeComApi, chat_id: str) -> dict[str, Any] | None:
    """groupchat/get with member names; None when WeCom no longer knows the group."""
    try:
        data = await api.call("POST", GET, body={"chat_id": chat_id, "need_name": 1})
    except WeComApiError as exc:
        if exc.errcode in GONE_ERRORS:
            return None
        raise
    detail: dict[str, Any] = data["group_chat"]
    return detail


async def run_group_sync(
    db: Database, account_id: int, api: WeComApi, *, max_pages: int | None = None
) -> GroupSyncReport:
    """Continue (or start) a pass until done or `max_pages`; resumable at any point."""
    report = GroupSyncReport()
    async with db.reading() as s:
        raw = await load_cursor(s, account_id, CURSOR)
    state: dict[str, Any] = json.loads(raw) if raw else {}
    if state.get("active"):
        report.resumed = True
    else:
        state = {"active": True, "cursor": "", "started": utcnow().isoformat()}
    while state.get("active"):
        if max_pages is not None and report.pages >= max_pages:
            return report
        body: dict[str, Any] = {"status_filter": 0, "limit": PAGE_LIMIT}
        if state["cursor"]:
            body["cursor"] = state["cursor"]
        data = await api.call("POST", LIST, body=body)
        listed = [
            (str(row["chat_id"]), int(row.get("status") or 0))
            for row in data.get("group_chat_list") or []
        ]
        details = [(await fetch_group(api, chat_id), status) for chat_id, status in listed]
        nxt = str(data.get("next_cursor") or "")
        state = {**state, "cursor": nxt, "active": bool(nxt)}
        if not nxt:
            state["finished"] = utcnow().isoformat()
        async with db.transaction() as s:
            account = await s.get(ChannelAccount, account_id)
            assert account is not None
            now = utcnow()
            for detail, status in details:
                if detail is None:
                    report.skipped += 1
                    continue
                await apply_detail(s, account, detail, now, owner_status=status)
                report.groups += 1
            await save_cursor(s, account_id, CURSOR, json.dumps(state))
        report.pages += 1
    report.finished = True
    log.info(
        "group sync account=%s pages=%d groups=%d skipped=%d",
        account_id,
        report.pages,
        report.groups,
        report.skipped,
    )
    return report


async def continue_group_sync(
    db: Database, account_id: int, api: WeComApi
) -> GroupSyncReport | None:
    """The worker job: finish a pass the console (or a crash) left under way; None when
    no pass is under way, so the job costs one store read between passes."""
    async with db.reading() as s:
        raw = await load_cursor(s, account_id, CURSOR)
    if not raw or not json.loads(raw).get("active"):
        return None
    return await run_group_sync(db, account_id, api)


async def refresh_marked_groups(
    db: Database, account_id: int, api: WeComApi, *, limit: int = 50
) -> int:
    """groupchat/get for the groups change_external_chat events marked; how many."""
    async with db.reading() as s:
        marked = (
            await s.scalars(
                select(CustomerGroup.chat_id)
                .where(
                    CustomerGroup.account_id == account_id,
                    CustomerGroup.needs_refresh.is_(True),
                    CustomerGroup.dismissed_at.is_(None),
                )
                .order_by(CustomerGroup.id)
                .limit(limit)
            )
        ).all()
    done = 0
    for chat_id in marked:
        detail = await fetch_group(api, chat_id)
        async with db.transaction() as s:
            account = await s.get(ChannelAccount, account_id)
            assert account is not None
            if detail is None:
                group = await s.scalar(
                    select(CustomerGroup).where(
                        CustomerGroup.account_id == account_id, CustomerGroup.chat_id == chat_id
                    )
                )
                if group is not None:
                    group.needs_refresh = False  # WeCom no longer knows it: nothing to fetch
                continue
            await apply_detail(s, account, detail, utcnow())
        done += 1
    return done
