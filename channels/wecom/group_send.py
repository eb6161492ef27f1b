"""Customer group sends (企业群发, add_msg_template) as tasks (issue 11).

Nothing reaches a customer until each salesperson confirms the task in the WeCom
client, so "exactly once" lives at the task level:

1. `create_group_send` (in the caller's transaction — broadcasts call it) freezes the
   audience into recipient rows, skips customers over the monthly cap, and queues one
   outbox operation keyed by the caller's idempotency key;
2. the outbox sends it (`create_on_wecom`); after a timeout `find_on_wecom` looks the
   task up in get_groupmsg_list_v2 instead of creating a second one;
3. `GroupSends.poll` records per-member confirmation (get_groupmsg_task) and the
   per-customer result (get_groupmsg_send_result: 0 not sent, 1 sent, 2 not a contact,
   3 already received another group send);
4. `remind` (≤3 per 24 h, checked here before WeCom refuses) and `cancel`.

A task goes to customers (chat_type "single") or to customer groups (chat_type "group",
客户群群发): then the sender is required, `chat_id_list` may name the groups (≤2000; none
= the sender picks among their groups), the recipient rows hold chat ids and the results
list `chat_id` instead of `external_userid`. The monthly cap is WeCom's per customer, so
crmbot does not pre-count it for groups.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import aiohttp
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.actions import queue_operation
from conversations.db import Database, utcnow
from conversations.models import ChannelAccount, OutboxItem
from conversations.types import Outbound, Purpose, SendResult

from .api import WeComApi
from .errors import WeComApiError
from .models import GroupSendMember, GroupSendRecipient, GroupSendTask
from .outbound import failed, result_of

log = logging.getLogger(__name__)

OPERATION = "wecom_group_send"
DEFAULT_MONTHLY_CAP = 4  # doc copy of 2023; newer SDK comments say "days in the month" [U]
REMINDS_PER_DAY = 3
MAX_RECIPIENTS = 10_000
MAX_GROUPS = 2000  # chat_id_list
SINGLE, GROUP = "single", "group"
STATUS_SKIPPED = -1
FINAL_TASK_STATES = ("finished", "cancelled", "failed")


class GroupSendError(Exception):
    pass


def monthly_cap(account: ChannelAccount) -> int:
    return int((account.config or {}).get("group_send_monthly_cap", DEFAULT_MONTHLY_CAP))


def _month_start(now: datetime) -> datetime:
    local = now.astimezone(UTC)
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


async def create_group_send(
    session: AsyncSession,
    account: ChannelAccount,
    *,
    key: str,
    text: str,
    external_userids: Sequence[str],
    sender: str = "",
    attachments: Sequence[dict[str, Any]] = (),
    reference: str | None = None,
    now: datetime | None = None,
    chat_ids: Sequence[str] = (),
    chat_type: str = SINGLE,
    list_chats: bool = True,
) -> GroupSendTask:
    """Freeze the audience and queue the task; the same `key` twice returns the first.

    For chat_type "group" `chat_ids` are the groups (recipient rows); `list_chats`
    False leaves chat_id_list out, so the sender chooses among all their groups."""
    existing = await session.scalar(select(GroupSendTask).where(GroupSendTask.outbox_key == key))
    if existing is not None:
        return existing
    if chat_type == GROUP:
        if not sender:
            raise GroupSendError("a group send needs its sender (the groups' owner)")
        if len(chat_ids) > MAX_GROUPS:
            raise GroupSendError(f"one task reaches at most {MAX_GROUPS} groups")
        external_userids = chat_ids
    elif chat_ids:
        raise GroupSendError("chat_id_list is only for chat_type group")
    if len(external_userids) > MAX_RECIPIENTS:
        raise GroupSendError(f"one task reaches at most {MAX_RECIPIENTS} customers")
    if len(attachments) > 9:
        raise GroupSendError("at most 9 attachments")
    now = now or utcnow()
    cap = monthly_cap(account)
    counts: dict[str, int] = {}
    if chat_type == SINGLE:
        counts = dict(
            (
                await session.execute(
                    select(GroupSendRecipient.external_userid, func.count())
                    .where(
                        GroupSendRecipient.account_id == account.id,
                        GroupSendRecipient.external_userid.in_(list(external_userids)),
                        GroupSendRecipient.status.in_((0, 1)),
                        GroupSendRecipient.created_at >= _month_start(now),
                    )
                    .group_by(GroupSendRecipient.external_userid)
                )
            ).all()
        )
    task = GroupSendTask(
        account_id=account.id,
        outbox_key=key,
        reference=reference,
        sender=sender,
        chat_type=chat_type,
        text=text,
        attachments=list(attachments),
        status="queued",
        created_at=now,
    )
    session.add(task)
    await session.flush()
    targets: list[str] = []
    for ext in dict.fromkeys(external_userids):  # keep order, drop repeats
        over = counts.get(ext, 0) >= cap
        session.add(
            GroupSendRecipient(
                task_id=task.id,
                account_id=account.id,
                external_userid=ext,
                status=STATUS_SKIPPED if over else 0,
                reason=f"本月已达群发上限 {cap} 条 (monthly cap {cap} reached)" if over else None,
                created_at=now,
            )
        )
        if not over:
            targets.append(ext)
    if not targets:
        task.status = "failed"
        task.error = "所有客户均已达本月群发上限 (every customer is over the monthly cap)"
        return task
    await queue_operation(
        session,
        account.id,
        recipient=sender or "*",
        purpose=Purpose.MARKETING,
        idempotency_key=key,
        payload={
            "operation": OPERATION,
            "kind": "text",
            "text": text,
            "task_id": task.id,
            "sender": sender,
            "chat_type": chat_type,
            **(
                {"chat_id_list": targets, "external_userid": []}
                if chat_type == GROUP and list_chats
                else {"external_userid": [] if chat_type == GROUP else targets}
            ),
            "attachments": list(attachments),
            "created": now.timestamp(),
        },
    )
    return task


async def create_on_wecom(api: WeComApi, message: Outbound) -> SendResult:
    """add_msg_template; the task's msgid becomes the outbox row's provider id."""
    p = message.payload
    chat_type = str(p.get("chat_type", SINGLE))
    body: dict[str, Any] = {"chat_type": chat_type, "text": {"content": str(p.get("text", ""))}}
    if chat_type == SINGLE:
        body["external_userid"] = list(p["external_userid"])
    elif p.get("chat_id_list"):
        body["chat_id_list"] = list(p["chat_id_list"])
    if p.get("sender"):
        body["sender"] = p["sender"]
    if p.get("attachments"):
        body["attachments"] = list(p["attachments"])
    try:
        data = await api.call("POST", "/cgi-bin/externalcontact/add_msg_template", body=body)
    except WeComApiError as exc:
        if exc.errcode == 41048:
            return failed("41048", exc.readable)
        return result_of(exc)
    except (aiohttp.ClientError, TimeoutError) as exc:
        return result_of(exc)  # UNKNOWN: reconciled with find_on_wecom before any retry
    return SendResult.sent(str(data["msgid"]))


async def find_on_wecom(api: WeComApi, message: Outbound) -> SendResult | None:
    """After a timeout: did WeCom create the task? Matched by creator and text."""
    p = message.payload
    created = int(float(p.get("created", time.time())))
    body: dict[str, Any] = {
        "chat_type": str(p.get("chat_type", SINGLE)),
        "start_time": created - 300,
        "end_time": min(created + 86400, int(time.time()) + 60),
        "limit": 100,
    }
    if p.get("sender"):
        body["creator"] = p["sender"]
    try:
        data = await api.call("POST", "/cgi-bin/externalcontact/get_groupmsg_list_v2", body=body)
    except (WeComApiError, aiohttp.ClientError, TimeoutError):
        return None
    for item in data.get("group_msg_list") or []:
        if (item.get("text") or {}).get("content") == p.get("text"):
            return SendResult.sent(str(item["msgid"]))
    return await create_on_wecom(api, message)  # not there: creating it now is safe


ApiFor = Callable[[int], Awaitable[WeComApi]]


class GroupSends:
    """Polling, reminders and cancellation of tasks (the scheduler runs `poll_open`)."""

    def __init__(self, db: Database, api_for: ApiFor) -> None:
        self.db = db
        self.api_for = api_for

    async def _paged(
        self, api: WeComApi, path: str, body: dict[str, Any], field: str
    ) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        cursor = ""
        while True:
            data = await api.call(
                "POST", path, body={**body, "limit": 1000, **({"cursor": cursor} if cursor else {})}
            )
            rows.extend(data.get(field) or [])
            cursor = str(data.get("next_cursor") or "")
            if not cursor:
                return rows

    async def poll_open(self, limit: int = 50) -> int:
        async with self.db.reading() as s:
            ids = (
                await s.scalars(
                    select(GroupSendTask.id)
                    .where(GroupSendTask.status.not_in(FINAL_TASK_STATES))
                    .order_by(GroupSendTask.polled_at.is_not(None), GroupSendTask.polled_at)
                    .limit(limit)
                )
            ).all()
        for task_id in ids:
            await self.poll(task_id)
        return len(ids)

    async def poll(self, task_id: int) -> GroupSendTask:
        async with self.db.reading() as s:
            task = await s.get(GroupSendTask, task_id)
            if task is None:
                raise GroupSendError(f"no group-send task {task_id}")
            outbox = await s.scalar(
                select(OutboxItem).where(OutboxItem.idempotency_key == task.outbox_key)
            )
        if task.msgid is None:
            if outbox is None or outbox.status not in ("sent", "failed"):
                return task  # still in the outbox
            async with self.db.transaction() as s:
                row = await s.get(GroupSendTask, task_id)
                assert row is not None
                if outbox.status == "failed":
                    row.status, row.error = "failed", outbox.last_error
                else:
                    row.msgid, row.status = outbox.provider_message_id, "created"
                row.polled_at = utcnow()
                task = row
            if task.status == "failed":
                return task
        api = await self.api_for(task.account_id)
        assert task.msgid is not None
        members = await self._paged(
            api, "/cgi-bin/externalcontact/get_groupmsg_task", {"msgid": task.msgid}, "task_list"
        )
        results: list[dict[str, Any]] = []
        for member in members:
            if int(member.get("status", 0)) == 2:
                results.extend(
                    await self._paged(
                        api,
                        "/cgi-bin/externalcontact/get_groupmsg_send_result",
                        {"msgid": task.msgid, "userid": member["userid"]},
                        "send_list",
                    )
                )
        async with self.db.transaction() as s:
            row = await s.get(GroupSendTask, task_id)
            assert row is not None
            for member in members:
                rec = await s.scalar(
                    select(GroupSendMember).where(
                        GroupSendMember.task_id == task_id,
                        GroupSendMember.userid == member["userid"],
                    )
                )
                if rec is None:
                    rec = GroupSendMember(task_id=task_id, userid=member["userid"])
                    s.add(rec)
                rec.status = int(member.get("status", 0))
                if member.get("send_time"):
                    rec.send_time = datetime.fromtimestamp(int(member["send_time"]), UTC)
            for result in results:
                # a group task's results name the group (chat_id), not a customer
                field = "chat_id" if row.chat_type == GROUP else "external_userid"
                target = str(result.get(field) or "")
                rec2 = await s.scalar(
                    select(GroupSendRecipient).where(
                        GroupSendRecipient.task_id == task_id,
                        GroupSendRecipient.external_userid == target,
                    )
                )
                if rec2 is None or rec2.status == STATUS_SKIPPED:
                    continue
                rec2.status = int(result.get("status", 0))
                rec2.userid = str(result.get("userid", ""))
                if result.get("send_time"):
                    rec2.send_time = datetime.fromtimestamp(int(result["send_time"]), UTC)
            if (
                row.status != "cancelled"
                and members
                and all(int(m.get("status", 0)) == 2 for m in members)
            ):
                row.status = "finished"
            row.polled_at = utcnow()
            task = row
        return task

    async def remind(self, task_id: int, *, now: float | None = None) -> None:
        """remind_groupmsg_send: at most 3 per 24 h (WeCom refuses the 4th)."""
        now = now if now is not None else time.time()
        async with self.db.reading() as s:
            task = await s.get(GroupSendTask, task_id)
        if task is None or task.msgid is None or task.status in FINAL_TASK_STATES:
            raise GroupSendError(
                "只能提醒已创建、未结束的群发 (only open, created tasks can be reminded)"
            )
        recent = [t for t in task.reminds if float(t) > now - 86400]
        if len(recent) >= REMINDS_PER_DAY:
            raise GroupSendError("24 小时内最多提醒 3 次 (at most 3 reminders per 24 h)")
        api = await self.api_for(task.account_id)
        await api.call(
            "POST", "/cgi-bin/externalcontact/remind_groupmsg_send", body={"msgid": task.msgid}
        )
        async with self.db.transaction() as s:
            row = await s.get(GroupSendTask, task_id)
            assert row is not None
            row.reminds = [*recent, now]

    async def cancel(self, task_id: int) -> None:
        """cancel_groupmsg_send: members who have not confirmed can no longer send it."""
        async with self.db.reading() as s:
            task = await s.get(GroupSendTask, task_id)
        if task is None:
            raise GroupSendError(f"no group-send task {task_id}")
        if task.msgid is not None:
            api = await self.api_for(task.account_id)
            await api.call(
                "POST", "/cgi-bin/externalcontact/cancel_groupmsg_send", body={"msgid": task.msgid}
            )
        async with self.db.transaction() as s:
            row = await s.get(GroupSendTask, task_id)
            assert row is not None
            row.status = "cancelled"
            if task.msgid is None:
                await s.execute(
                    update(OutboxItem)
                    .where(
                        OutboxItem.idempotency_key == task.outbox_key,
                        OutboxItem.status == "pending",
                    )
                    .values(status="cancelled")
                )
