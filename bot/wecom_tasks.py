"""Broadcasts on a 客户联系 account become WeCom 企业群发 tasks (broadcasts.tasks).

One add_msg_template task per follow-up salesperson (跟进人) and run, keyed
"bc:<run>:wecom:<account>:<userid>", created with `group_send.create_group_send` in the
broadcast's transaction; the outbox creates it on WeCom, `GroupSends.poll` records the
salesperson's confirmation and each customer's result, read back here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from broadcasts.models import Broadcast, BroadcastRun, RecipientStatus, SkipReason
from broadcasts.tasks import TaskControlError, TaskOutcome, TaskRecipient, TaskSummary
from channels.wecom.errors import WeComApiError
from channels.wecom.group_send import (
    FINAL_TASK_STATES,
    STATUS_SKIPPED,
    GroupSendError,
    GroupSends,
    create_group_send,
)
from channels.wecom.models import (
    FollowRelation,
    GroupSendMember,
    GroupSendRecipient,
    GroupSendTask,
)
from conversations.db import Database
from conversations.models import ChannelAccount, Customer, StaffUser

from .wecom_group_broadcasts import create_group_tasks, group_outcome

log = logging.getLogger(__name__)

KIND = "wecom.contact"
CONFIRMED = 2  # get_groupmsg_task: 2 = the member sent it

# get_groupmsg_send_result status → (recipient status, skip reason)
_RESULT: dict[int, tuple[RecipientStatus, SkipReason | None]] = {
    0: (RecipientStatus.QUEUED, None),
    1: (RecipientStatus.SENT, None),
    2: (RecipientStatus.SKIPPED, SkipReason.NOT_CONTACT),
    3: (RecipientStatus.SKIPPED, SkipReason.ALREADY_RECEIVED),
    STATUS_SKIPPED: (RecipientStatus.SKIPPED, SkipReason.MONTHLY_CAP),
}


def reference(run_id: int) -> str:
    return f"bc:{run_id}"


def attachments_of(variant: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The broadcast's WeCom variant as add_msg_template attachments (≤9): its own
    `attachments` list, plus the image / link / miniprogram of its msgtype."""
    out = [dict(a) for a in variant.get("attachments") or [] if isinstance(a, Mapping)]
    msgtype = str(variant.get("msgtype", "text"))
    if msgtype == "image":
        media = variant.get("media")
        image = {"pic_url": media} if str(media).startswith("http") else {"media_id": media}
        out.append({"msgtype": "image", "image": image})
    elif msgtype == "link":
        link = {k: variant[k] for k in ("title", "url", "picurl", "desc") if variant.get(k)}
        out.append({"msgtype": "link", "link": link})
    elif msgtype == "miniprogram":
        keys = ("title", "appid", "page", "pic_media_id")
        out.append(
            {"msgtype": "miniprogram", "miniprogram": {k: variant[k] for k in keys if k in variant}}
        )
    return out


class WeComGroupSendTasks:
    """`broadcasts.tasks.TaskChannel` for wecom.contact accounts."""

    async def _senders(
        self, session: AsyncSession, account_id: int, recipients: Sequence[TaskRecipient]
    ) -> dict[str, str]:
        """external_userid → the salesperson who sends to them: the customer's owner when
        they follow the customer, else whoever added the customer first."""
        addresses = [r.address for r in recipients]
        owners = dict(
            (
                await session.execute(
                    select(Customer.id, StaffUser.wecom_userid)
                    .join(StaffUser, StaffUser.id == Customer.owner_id)
                    .where(Customer.id.in_([r.customer_id for r in recipients if r.customer_id]))
                )
            ).all()
        )
        following: dict[str, list[str]] = {}
        for ext, userid in await session.execute(
            select(FollowRelation.external_userid, FollowRelation.userid)
            .where(
                FollowRelation.account_id == account_id,
                FollowRelation.external_userid.in_(addresses),
                FollowRelation.status == "active",
            )
            .order_by(FollowRelation.added_at, FollowRelation.id)
        ):
            following.setdefault(ext, []).append(userid)
        chosen: dict[str, str] = {}
        for r in recipients:
            users = following.get(r.address)
            if users:
                owner = owners.get(r.customer_id or 0)
                chosen[r.address] = owner if owner in users else users[0]
        return chosen

    async def create_tasks(
        self,
        session: AsyncSession,
        *,
        run_id: int,
        account_id: int,
        content: Mapping[str, Any],
        recipients: Sequence[TaskRecipient],
    ) -> Sequence[TaskOutcome]:
        account = await session.get(ChannelAccount, account_id)
        assert account is not None
        groups = [r for r in recipients if r.customer_id is None]
        settled: list[TaskOutcome] = []
        if groups:
            run = await session.get(BroadcastRun, run_id)
            broadcast = await session.get(Broadcast, run.broadcast_id) if run else None
            audience = broadcast.audience if broadcast is not None else {}
            settled = await create_group_tasks(
                session,
                account,
                key_prefix=f"{reference(run_id)}:wecom:{account_id}:group",
                reference=reference(run_id),
                content=content,
                attachments=attachments_of(content),
                recipients=groups,
                picked=bool(audience.get("chat_ids")),
            )
            recipients = [r for r in recipients if r.customer_id is not None]
        senders = await self._senders(session, account_id, recipients)
        by_sender: dict[str, list[str]] = {}
        for r in recipients:
            if r.address in senders:
                by_sender.setdefault(senders[r.address], []).append(r.address)
        attachments = attachments_of(content)
        for sender, customers in sorted(by_sender.items()):
            await create_group_send(
                session,
                account,
                key=f"{reference(run_id)}:wecom:{account_id}:{sender}",
                text=str(content.get("text", "")),
                external_userids=customers,
                sender=sender,
                attachments=attachments,
                reference=reference(run_id),
            )
        return settled + [
            TaskOutcome(
                account_id, r.address, RecipientStatus.SKIPPED.value, SkipReason.NOT_CONTACT.value
            )
            for r in recipients
            if r.address not in senders
        ]

    async def outcomes(self, session: AsyncSession, run_id: int) -> Sequence[TaskOutcome]:
        sent_by = set(
            (
                await session.scalars(
                    select(GroupSendMember.task_id)
                    .join(GroupSendTask, GroupSendTask.id == GroupSendMember.task_id)
                    .where(
                        GroupSendTask.reference == reference(run_id),
                        GroupSendTask.chat_type == "group",
                        GroupSendMember.status == CONFIRMED,
                    )
                )
            ).all()
        )
        rows = await session.execute(
            select(
                GroupSendTask.id,
                GroupSendTask.chat_type,
                GroupSendTask.account_id,
                GroupSendTask.status,
                GroupSendTask.error,
                GroupSendRecipient.external_userid,
                GroupSendRecipient.status,
                GroupSendRecipient.reason,
            )
            .join(GroupSendRecipient, GroupSendRecipient.task_id == GroupSendTask.id)
            .where(GroupSendTask.reference == reference(run_id))
        )
        out = []
        for task_id, chat_type, account_id, task_status, error, ext, status, reason in rows:
            if chat_type == "group":
                found = group_outcome(account_id, ext, int(status), task_id in sent_by, task_status)
                if found.status == RecipientStatus.FAILED.value and task_status == "failed":
                    found = TaskOutcome(account_id, ext, found.status, error or found.reason)
                out.append(found)
                continue
            new, skip = _RESULT.get(int(status), (RecipientStatus.QUEUED, None))
            why: str | None = skip.value if skip is not None else None
            if new == RecipientStatus.QUEUED and task_status == "failed":
                new, why = RecipientStatus.FAILED, error or reason or "group send failed"
            elif new == RecipientStatus.QUEUED and task_status == "cancelled":
                new = RecipientStatus.CANCELLED
            out.append(TaskOutcome(account_id, ext, new.value, why))
        return out

    async def summaries(self, session: AsyncSession, run_id: int) -> Sequence[TaskSummary]:
        tasks = (
            await session.scalars(
                select(GroupSendTask)
                .where(GroupSendTask.reference == reference(run_id))
                .order_by(GroupSendTask.id)
            )
        ).all()
        out = []
        for task in tasks:
            counts = dict(
                (
                    await session.execute(
                        select(GroupSendRecipient.status, func.count())
                        .where(GroupSendRecipient.task_id == task.id)
                        .group_by(GroupSendRecipient.status)
                    )
                ).all()
            )
            confirmed = await session.scalar(
                select(func.count()).where(
                    GroupSendMember.task_id == task.id, GroupSendMember.status == CONFIRMED
                )
            )
            out.append(
                TaskSummary(
                    account_id=task.account_id,
                    sender=task.sender,
                    status=task.status,
                    confirmed=bool(confirmed),
                    recipients=sum(int(n) for n in counts.values()),
                    sent=int(counts.get(1, 0)),
                    error=task.error,
                    task_id=task.id,
                    chat_type=task.chat_type,
                    can_remind=task.msgid is not None and task.status == "created",
                    can_cancel=task.status not in FINAL_TASK_STATES,
                )
            )
        return out


class WeComTaskControls:
    """`broadcasts.tasks.TaskControls` for 企业群发 tasks: remind (≤3 per 24 h) and
    cancel through `GroupSends`, which calls WeCom directly (a staff action, not a send)."""

    def __init__(self, db: Database, group_sends: GroupSends) -> None:
        self.db = db
        self.group_sends = group_sends

    async def _task_of_run(self, run_id: int, task_id: int) -> GroupSendTask:
        async with self.db.reading() as s:
            task = await s.get(GroupSendTask, task_id)
        if task is None or task.reference != reference(run_id):
            raise TaskControlError("该群发任务不属于此次发送 (no such task in this send)")
        return task

    async def remind(self, run_id: int, task_id: int) -> None:
        await self._task_of_run(run_id, task_id)
        try:
            await self.group_sends.remind(task_id)
        except GroupSendError as exc:
            raise TaskControlError(str(exc)) from None
        except WeComApiError as exc:
            raise TaskControlError(exc.readable) from None

    async def cancel(self, run_id: int, task_id: int) -> None:
        task = await self._task_of_run(run_id, task_id)
        if task.status in FINAL_TASK_STATES:
            raise TaskControlError("该群发任务已结束 (the task has already ended)")
        try:
            await self.group_sends.cancel(task_id)
        except WeComApiError as exc:
            raise TaskControlError(exc.readable) from None

    async def cancel_run(self, run_id: int) -> int:
        """Every open task of the run: members who have not sent it can no longer."""
        async with self.db.reading() as s:
            ids = (
                await s.scalars(
                    select(GroupSendTask.id)
                    .where(
                        GroupSendTask.reference == reference(run_id),
                        GroupSendTask.status.not_in(FINAL_TASK_STATES),
                    )
                    .order_by(GroupSendTask.id)
                )
            ).all()
        cancelled = 0
        for task_id in ids:
            try:
                await self.group_sends.cancel(task_id)
            except WeComApiError as exc:  # one refusal must not keep the others open
                log.warning("run=%s task=%s not cancelled: %s", run_id, task_id, exc.readable)
                continue
            cancelled += 1
        return cancelled
