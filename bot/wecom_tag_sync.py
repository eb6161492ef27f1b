"""Two-way sync of crmbot tags with WeCom corp tags (企业客户标签) on 客户联系 accounts.

- `sync_corp_tags` (periodic, one worker at a time): the tag catalogue both ways with
  `tagging.wecom_sync.plan_sync`, then each WeCom customer's tags as WeCom holds them
  mirrored onto the crmbot customer.
- `push_tag_changes` (every few seconds): crmbot tag assignments and removals since the
  last pass become `mark_tag` operations in the outbox, one per follow relation, in the
  transaction that moves the pass's cursor (nothing skipped, nothing queued twice).

Conflict rules (docs/channels/wecom.md, "Corp tags"): names edited in WeCom win; a tag
deleted in WeCom is archived in crmbot; tags made in crmbot are created in WeCom; for a
customer's tags the most recent side wins — a crmbot change is pushed before the next
pull (the pull reads the relation's tags as the push left them), and changes that came
from WeCom (source "wecom") are never pushed back. One corp per installation holds the
tag ids (`Tag.wecom_tag_id`): the account with `corp_tag_sync = true`, or the only
客户联系 account.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from channels.wecom.api import WeComApi
from channels.wecom.models import FollowRelation
from channels.wecom.tags import MARK_TAG_OPERATION, CorpTags
from conversations.actions import load_cursor, queue_operation, save_cursor
from conversations.db import Database
from conversations.models import ChannelAccount
from conversations.types import Purpose
from tagging.models import Tag, TagEvent
from tagging.wecom_sync import (
    RemoteGroup,
    RemoteTag,
    apply_plan_locally,
    apply_remote_customer_tags,
    customer_remote_tag_ids,
    load_local_state,
    plan_mark,
    plan_sync,
    record_remote_ids,
)

log = logging.getLogger(__name__)

KIND = "wecom.contact"
CURSOR = "tag_push"
PUSH_BATCH = 500
ApiFor = Callable[[int], Awaitable[WeComApi]]


async def tag_sync_account(db: Database) -> int | None:
    """The 客户联系 account whose corp holds crmbot's tag ids, if any."""
    async with db.reading() as s:
        rows = (
            await s.scalars(
                select(ChannelAccount)
                .where(ChannelAccount.kind == KIND, ChannelAccount.enabled.is_(True))
                .order_by(ChannelAccount.id)
            )
        ).all()
    chosen = [a for a in rows if (a.config or {}).get("corp_tag_sync")]
    if chosen:
        return chosen[0].id
    return rows[0].id if len(rows) == 1 else None


async def sync_corp_tags(db: Database, account_id: int, api: WeComApi) -> dict[str, int]:
    """One full pass: catalogue both ways, then customers' WeCom tags onto crmbot."""
    corp = CorpTags(api)
    remote = [
        RemoteGroup(g.id, g.name, tuple(RemoteTag(t.id, t.name, t.order) for t in g.tags), g.order)
        for g in await corp.list()
    ]
    async with db.transaction() as s:
        plan = plan_sync(remote, await load_local_state(s))
        await apply_plan_locally(s, plan)
    for creation in plan.create_remote:
        group = await corp.add(
            creation.tag_names,
            group_id=creation.wecom_group_id,
            group_name=None if creation.wecom_group_id else creation.group_name,
        )
        made = {t.name: t.id for t in group.tags}
        async with db.transaction() as s:
            await record_remote_ids(s, creation, group.id, [made[n] for n in creation.tag_names])
    mirrored = await _mirror_customers(db, account_id)
    return {
        "created_here": len(plan.create_local),
        "created_in_wecom": sum(len(c.tag_names) for c in plan.create_remote),
        "renamed": len(plan.rename_tags) + len(plan.rename_groups),
        "archived": len(plan.archive_tags),
        "customer_changes": mirrored,
    }


async def _mirror_customers(db: Database, account_id: int) -> int:
    """Each customer's tags as their follow relations hold them (union over salespeople)."""
    async with db.transaction() as s:
        relations = (
            await s.execute(
                select(FollowRelation.customer_id, FollowRelation.tag_ids).where(
                    FollowRelation.account_id == account_id, FollowRelation.status == "active"
                )
            )
        ).all()
        wanted: dict[int, set[str]] = {}
        for customer_id, tag_ids in relations:
            wanted.setdefault(customer_id, set()).update(str(t) for t in tag_ids or [])
        changed = 0
        for customer_id, remote_ids in sorted(wanted.items()):
            added, removed = await apply_remote_customer_tags(s, customer_id, remote_ids)
            changed += added + removed
        return changed


async def _queue_marks(
    session: AsyncSession, account_id: int, customer_id: int, event_id: int
) -> int:
    desired = set(await customer_remote_tag_ids(session, customer_id))
    synced = set(
        str(t)
        for t in await session.scalars(
            select(Tag.wecom_tag_id).where(Tag.wecom_tag_id.is_not(None))
        )
    )
    queued = 0
    relations = await session.scalars(
        select(FollowRelation).where(
            FollowRelation.account_id == account_id,
            FollowRelation.customer_id == customer_id,
            FollowRelation.status == "active",
        )
    )
    for relation in relations:
        current = [str(t) for t in relation.tag_ids or []]
        # only tags crmbot knows are touched: personal tags (个人标签) stay as they are
        add, remove = plan_mark(desired, [t for t in current if t in synced])
        if not add and not remove:
            continue
        await queue_operation(
            session,
            account_id,
            recipient=relation.external_userid,
            purpose=Purpose.NOTIFICATION,
            idempotency_key=f"wecom:mark_tag:{event_id}:{relation.id}",
            payload={
                "operation": MARK_TAG_OPERATION,
                "userid": relation.userid,
                "external_userid": relation.external_userid,
                "add_tag": add,
                "remove_tag": remove,
            },
        )
        # the relation now holds what the push will make true (the pull reads it)
        relation.tag_ids = [t for t in current if t not in remove] + add
        queued += 1
    return queued


async def push_tag_changes(db: Database, account_id: int) -> int:
    """Tag events made in crmbot since the last pass → mark_tag operations; how many."""
    async with db.transaction() as s:
        after = int(await load_cursor(s, account_id, CURSOR) or 0)
        events = (
            await s.execute(
                select(TagEvent.id, TagEvent.customer_id, TagEvent.source)
                .where(TagEvent.id > after)
                .order_by(TagEvent.id)
                .limit(PUSH_BATCH)
            )
        ).all()
        if not events:
            return 0
        latest: dict[int, int] = {}
        for event_id, customer_id, source in events:
            if source != "wecom":  # WeCom's own changes are not echoed back
                latest[customer_id] = event_id
        queued = 0
        for customer_id, event_id in sorted(latest.items()):
            queued += await _queue_marks(s, account_id, customer_id, event_id)
        await save_cursor(s, account_id, CURSOR, str(events[-1][0]))
    if queued:
        log.info("tag push account=%s: %d mark_tag operations queued", account_id, queued)
    return queued


def tag_jobs(db: Database, api_for: ApiFor) -> dict[str, Callable[[], Awaitable[Any]]]:
    """The two jobs, resolving the sync account at each run (it may be added later)."""

    async def pull() -> dict[str, int] | None:
        account_id = await tag_sync_account(db)
        if account_id is None:
            return None
        return await sync_corp_tags(db, account_id, await api_for(account_id))

    async def push() -> int:
        account_id = await tag_sync_account(db)
        return 0 if account_id is None else await push_tag_changes(db, account_id)

    return {"wecom.tags.sync": pull, "wecom.tags.push": push}
