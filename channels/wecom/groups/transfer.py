"""Hand-over of customer groups when their owner leaves or changes job: groupchat/transfer
for a resigned owner (doc 92127, 离职继承) and groupchat/onjob_transfer for an owner still
employed (doc 95703, 在职继承). ≤100 groups per call; the groups WeCom refuses come back
in `failed_chat_list` with their own errcode (90500 owner not resigned, 90501 not a
customer group, …). Each attempt is recorded; a transferred group gets its new owner at
once (the change_owner event that follows confirms it).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select

from channels.wecom.api import WeComApi
from conversations.db import Database

from .models import CustomerGroup, GroupTransfer

log = logging.getLogger(__name__)

BATCH = 100  # chat_id_list: 1 ~ 100
RESIGNED_PATH = "/cgi-bin/externalcontact/groupchat/transfer"
ONJOB_PATH = "/cgi-bin/externalcontact/groupchat/onjob_transfer"

# per-group errcodes of failed_chat_list, in words an operator acts on
GROUP_TRANSFER_ERRORS: dict[int, str] = {
    90500: "群主尚未离职，请用在职继承 (owner has not resigned: use the on-job hand-over)",
    90501: "该群不是客户群 (not a customer group)",
    90502: "群主已离职，请用离职继承 (owner has resigned: use the resigned hand-over)",
    90503: "接替成员今天可接收的群已达上限，或该群 90 天内已转接 2 次 "
    "(new owner's daily limit reached, or the group was handed over twice in 90 days)",
    90504: "新群主与原群主相同 (new owner is the current owner)",
    90507: "离职群正在继承中 (hand-over of this group already under way)",
    90508: "离职群已经继承 (group already handed over)",
    86001: "客户群 ID 无效 (invalid chat id)",
}


@dataclass
class TransferReport:
    """What a group hand-over did: the groups moved, and those refused with the reason."""

    requested: int = 0
    transferred: list[str] = field(default_factory=list)
    failed: dict[str, tuple[int, str]] = field(default_factory=dict)  # chat_id → (code, reason)

    @property
    def ok(self) -> bool:
        return not self.failed


async def transfer_groups(
    db: Database,
    api: WeComApi,
    account_id: int,
    from_userid: str,
    to_userid: str,
    resigned: bool,
    *,
    chat_ids: Sequence[str] | None = None,
) -> TransferReport:
    """Hand `from_userid`'s groups (not dismissed; or just `chat_ids`) to `to_userid`."""
    report = TransferReport()
    async with db.reading() as s:
        query = select(CustomerGroup.chat_id).where(
            CustomerGroup.account_id == account_id,
            CustomerGroup.owner_userid == from_userid,
            CustomerGroup.dismissed_at.is_(None),
        )
        if chat_ids is not None:
            query = query.where(CustomerGroup.chat_id.in_(list(chat_ids)))
        owned = list((await s.scalars(query.order_by(CustomerGroup.id))).all())
    report.requested = len(owned)
    path = RESIGNED_PATH if resigned else ONJOB_PATH
    for start in range(0, len(owned), BATCH):
        chunk = owned[start : start + BATCH]
        data = await api.call("POST", path, body={"chat_id_list": chunk, "new_owner": to_userid})
        failed = {
            str(row["chat_id"]): int(row.get("errcode") or 0)
            for row in data.get("failed_chat_list") or []
            if int(row.get("errcode") or 0) != 0
        }
        async with db.transaction() as s:
            for chat_id in chunk:
                code = failed.get(chat_id, 0)
                reason = GROUP_TRANSFER_ERRORS.get(code, f"errcode {code}") if code else None
                s.add(
                    GroupTransfer(
                        account_id=account_id,
                        chat_id=chat_id,
                        resigned=resigned,
                        from_userid=from_userid,
                        to_userid=to_userid,
                        errcode=code,
                        reason=reason,
                    )
                )
                if code:
                    report.failed[chat_id] = (code, reason or "")
                    continue
                report.transferred.append(chat_id)
                group = await s.scalar(
                    select(CustomerGroup).where(
                        CustomerGroup.account_id == account_id, CustomerGroup.chat_id == chat_id
                    )
                )
                if group is not None:
                    group.owner_userid = to_userid
                    if resigned:
                        group.owner_status = 2  # 离职继承中 until WeCom finishes it
    log.info(
        "group hand-over account=%s %s→%s resigned=%s moved=%d refused=%d",
        account_id,
        from_userid,
        to_userid,
        resigned,
        len(report.transferred),
        len(report.failed),
    )
    return report
