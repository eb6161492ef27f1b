"""Broadcasts to WeCom customer groups (客户群群发): the audience kind "wecom_groups".

The audience is chosen owners (群主, by WeCom userid) of one 客户联系 account and,
optionally, chosen groups of theirs; dismissed groups never count. The run freezes one
recipient row per group (no customer, `address` = chat id, straight into 'grouping'),
then `WeComGroupSendTasks.create_tasks` makes ONE add_msg_template task per owner with
chat_type "group" in the run's task transaction — with chat_id_list only when the
marketer picked groups, so an owner without a pick can choose among all their groups in
the WeCom client. Per-group results come back from get_groupmsg_send_result (chat_id).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from broadcasts.audience import AudienceRegistry, TaskAudience, TaskTarget
from broadcasts.models import RecipientStatus, SkipReason
from broadcasts.tasks import TaskOutcome, TaskRecipient
from channels.wecom.group_send import GROUP, create_group_send
from channels.wecom.groups.models import CustomerGroup
from conversations.models import ChannelAccount

AUDIENCE_KIND = "wecom_groups"

# get_groupmsg_send_result status of a group → what the broadcast row becomes
GROUP_FAILURES = {
    2: "不再是该群群主的群 (the group no longer belongs to the sender)",
    3: "该群本月已收满群发 (the group reached its monthly group-send cap)",
}


def group_audience(spec: Mapping[str, Any], _at: datetime, _zone: str) -> TaskAudience:
    """{"kind": "wecom_groups", "account_id": 1, "owners": ["zhangsan"], "chat_ids": [...]}:
    every live group of the owners, or only the picked ones (of those owners, if named)."""
    account_id = int(spec.get("account_id") or 0)
    owners = [str(o) for o in spec.get("owners") or []]
    chosen = [str(c) for c in spec.get("chat_ids") or []]

    async def targets(session: AsyncSession) -> Sequence[TaskTarget]:
        if not owners and not chosen:
            return []
        query = (
            select(CustomerGroup.chat_id)
            .where(CustomerGroup.account_id == account_id, CustomerGroup.dismissed_at.is_(None))
            .order_by(CustomerGroup.id)
        )
        if owners:  # picked groups of other owners stay out
            query = query.where(CustomerGroup.owner_userid.in_(owners))
        if chosen:
            query = query.where(CustomerGroup.chat_id.in_(chosen))
        return [TaskTarget(account_id, c) for c in await session.scalars(query)]

    return TaskAudience(targets)


def register_group_audience(audiences: AudienceRegistry) -> AudienceRegistry:
    audiences.register(AUDIENCE_KIND, group_audience)
    return audiences


async def create_group_tasks(
    session: AsyncSession,
    account: ChannelAccount,
    *,
    key_prefix: str,
    reference: str,
    content: Mapping[str, Any],
    attachments: Sequence[dict[str, Any]],
    recipients: Sequence[TaskRecipient],
    picked: bool,
) -> list[TaskOutcome]:
    """One chat_type=group task per owner of the frozen groups; groups that lost their
    owner (dismissed or gone since the freeze) fail at once."""
    owners = dict(
        (
            await session.execute(
                select(CustomerGroup.chat_id, CustomerGroup.owner_userid).where(
                    CustomerGroup.account_id == account.id,
                    CustomerGroup.chat_id.in_([r.address for r in recipients]),
                    CustomerGroup.dismissed_at.is_(None),
                )
            )
        ).all()
    )
    by_owner: dict[str, list[str]] = {}
    lost: list[TaskOutcome] = []
    for r in recipients:
        owner = owners.get(r.address)
        if owner:
            by_owner.setdefault(owner, []).append(r.address)
        else:
            lost.append(
                TaskOutcome(
                    account.id,
                    r.address,
                    RecipientStatus.FAILED.value,
                    "群已解散或不再同步 (the group is dismissed or gone)",
                )
            )
    for owner, chat_ids in sorted(by_owner.items()):
        await create_group_send(
            session,
            account,
            key=f"{key_prefix}:{owner}",
            text=str(content.get("text", "")),
            external_userids=(),
            chat_ids=chat_ids,
            chat_type=GROUP,
            list_chats=picked,
            sender=owner,
            attachments=attachments,
            reference=reference,
        )
    return lost


def group_outcome(
    account_id: int, chat_id: str, status: int, member_sent: bool, task_status: str
) -> TaskOutcome:
    """Sent / not sent / failed for one group of a group task."""
    if status == 1:
        return TaskOutcome(account_id, chat_id, RecipientStatus.SENT.value)
    if status in GROUP_FAILURES:
        return TaskOutcome(
            account_id, chat_id, RecipientStatus.FAILED.value, GROUP_FAILURES[status]
        )
    if member_sent:  # the owner sent the task but left this group out
        return TaskOutcome(
            account_id, chat_id, RecipientStatus.SKIPPED.value, SkipReason.NOT_SENT.value
        )
    if task_status == "cancelled":
        return TaskOutcome(account_id, chat_id, RecipientStatus.CANCELLED.value)
    if task_status == "failed":
        return TaskOutcome(account_id, chat_id, RecipientStatus.FAILED.value, "group send failed")
    return TaskOutcome(account_id, chat_id, RecipientStatus.QUEUED.value)
