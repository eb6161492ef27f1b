"""Full sync of external contacts (back-fill on first connect and on demand).

get_follow_user_list gives the members with 客户联系; batch/get_by_user pages through
their customers (≤100 members per call, ≤100 per page, a `cursor`). The job's position
— members still to do and the page cursor — is a ChannelCursor saved in the SAME
transaction as each page's customers (DESIGN.md invariant 2), so a crash or restart
resumes at the page after the last one stored: nothing lost, nothing written twice.
Also refreshes relations marked by edit_external_contact events.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.actions import load_cursor, save_cursor
from conversations.db import Database, utcnow
from conversations.models import ChannelAccount

from .api import WeComApi
from .customers import upsert_follow
from .models import FollowRelation

log = logging.getLogger(__name__)

CURSOR = "contact_sync"
MEMBERS_PER_CALL = 100
PAGE_LIMIT = 100


@dataclass
class SyncReport:
    pages: int = 0
    relations: int = 0
    resumed: bool = False
    finished: bool = False


async def _state(db: Database, account_id: int) -> dict[str, Any] | None:
    async with db.reading() as s:
        raw = await load_cursor(s, account_id, CURSOR)
    if not raw:
        return None
    state: dict[str, Any] = json.loads(raw)
    return state


async def start_full_sync(db: Database, account_id: int, api: WeComApi) -> None:
    """Begin a new pass (console 'sync now', first connect); a pass under way is kept."""
    state = await _state(db, account_id)
    if state is not None and state.get("members"):
        return
    data = await api.call("GET", "/cgi-bin/externalcontact/get_follow_user_list")
    members = [str(u) for u in data.get("follow_user") or []]
    async with db.transaction() as s:
        await save_cursor(
            s,
            account_id,
            CURSOR,
            json.dumps({"members": members, "cursor": "", "started": utcnow().isoformat()}),
        )


async def run_full_sync(
    db: Database, account_id: int, api: WeComApi, *, max_pages: int | None = None
) -> SyncReport:
    """Continue (or start) the pass until done or `max_pages`; resumable at any point."""
    report = SyncReport()
    state = await _state(db, account_id)
    if state is None or not state.get("members"):
        await start_full_sync(db, account_id, api)
        state = await _state(db, account_id)
        assert state is not None
    else:
        report.resumed = True
    while state["members"]:
        if max_pages is not None and report.pages >= max_pages:
            return report
        chunk = state["members"][:MEMBERS_PER_CALL]
        body: dict[str, Any] = {"userid_list": chunk, "limit": PAGE_LIMIT}
        if state["cursor"]:
            body["cursor"] = state["cursor"]
        data = await api.call("POST", "/cgi-bin/externalcontact/batch/get_by_user", body=body)
        nxt = str(data.get("next_cursor") or "")
        state = {**state, "cursor": nxt}
        if not nxt:
            state["members"] = state["members"][MEMBERS_PER_CALL:]
        if not state["members"]:
            state["finished"] = utcnow().isoformat()
        async with db.transaction() as s:
            account = await s.get(ChannelAccount, account_id)
            assert account is not None
            for row in data.get("external_contact_list") or []:
                await _apply(s, account, row)
                report.relations += 1
            await save_cursor(s, account_id, CURSOR, json.dumps(state))
        report.pages += 1
    report.finished = True
    log.info(
        "contact sync account=%s pages=%d relations=%d", account_id, report.pages, report.relations
    )
    return report


async def _apply(session: AsyncSession, account: ChannelAccount, row: dict[str, Any]) -> None:
    contact = row.get("external_contact") or {}
    follow = row.get("follow_info") or {}
    created = follow.get("createtime")
    await upsert_follow(
        session,
        account,
        str(contact["external_userid"]),
        str(follow["userid"]),
        name=str(contact.get("name") or "") or None,
        unionid=str(contact.get("unionid") or "") or None,
        state=str(follow.get("state") or ""),
        remark=str(follow.get("remark") or ""),
        tag_ids=[str(t) for t in follow.get("tag_id") or []],
        add_way=int(follow["add_way"]) if follow.get("add_way") is not None else None,
        added_at=datetime.fromtimestamp(int(created), UTC) if created else None,
    )


async def refresh_marked(db: Database, account_id: int, api: WeComApi, *, limit: int = 50) -> int:
    """externalcontact/get for relations an edit_external_contact event marked."""
    async with db.reading() as s:
        marked = (
            await s.scalars(
                select(FollowRelation)
                .where(
                    FollowRelation.account_id == account_id, FollowRelation.needs_refresh.is_(True)
                )
                .limit(limit)
            )
        ).all()
    done = 0
    for ext in dict.fromkeys(r.external_userid for r in marked):
        data = await api.call(
            "GET", "/cgi-bin/externalcontact/get", params={"external_userid": ext}
        )
        async with db.transaction() as s:
            account = await s.get(ChannelAccount, account_id)
            assert account is not None
            for follow in data.get("follow_user") or []:
                await _apply(
                    s,
                    account,
                    {"external_contact": data.get("external_contact") or {}, "follow_info": follow},
                )
            for rel in (
                await s.scalars(
                    select(FollowRelation).where(
                        FollowRelation.account_id == account_id,
                        FollowRelation.external_userid == ext,
                    )
                )
            ).all():
                rel.needs_refresh = False
        done += 1
    return done
