"""The customer-group part of a console hand-over: a departed salesperson's 客户群 move
to the taker together with their customers (bot.handover runs it after
`channels.wecom.handover.WeComCustomerTransfer`).

groupchat/transfer (离职继承) when the giver is deactivated, else groupchat/onjob_transfer.
Groups WeCom refuses with 90500 (owner has not resigned) are retried on-job, as the
customer part does with 40097.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import select

from channels.wecom.api import WeComApi
from channels.wecom.handover import NO_USERID, handover_parties
from conversations.db import Database
from conversations.models import ChannelAccount

from .models import CustomerGroup
from .transfer import transfer_groups

OWNER_NOT_RESIGNED = 90500
ApiFor = Callable[[int], Awaitable[WeComApi]]


class WeComGroupTransfer:
    """A hand-over part: `await part(handover_id)` → what happened, for the record."""

    name = "wecom_groups"

    def __init__(self, db: Database, api_for: ApiFor) -> None:
        self.db = db
        self.api_for = api_for

    async def __call__(self, handover_id: int) -> dict[str, Any]:
        async with self.db.reading() as s:
            parties = await handover_parties(s, handover_id)
            if parties is None:
                return dict(NO_USERID)
            accounts = list(
                (
                    await s.scalars(
                        select(CustomerGroup.account_id)
                        .join(ChannelAccount, ChannelAccount.id == CustomerGroup.account_id)
                        .where(
                            ChannelAccount.enabled.is_(True),
                            CustomerGroup.owner_userid == parties.giver_userid,
                            CustomerGroup.dismissed_at.is_(None),
                        )
                        .distinct()
                        .order_by(CustomerGroup.account_id)
                    )
                ).all()
            )
        giver_left = parties.giver_left
        from_userid, to_userid = parties.giver_userid, parties.taker_userid
        detail: dict[str, Any] = {"transferred": 0, "failed": 0, "accounts": {}}
        for account_id in accounts:
            api = await self.api_for(account_id)
            report = await transfer_groups(
                self.db, api, account_id, from_userid, to_userid, resigned=giver_left
            )
            moved, refused = list(report.transferred), dict(report.failed)
            retry = [c for c, (code, _reason) in refused.items() if code == OWNER_NOT_RESIGNED]
            if giver_left and retry:  # deactivated in crmbot but still a WeCom member
                again = await transfer_groups(
                    self.db, api, account_id, from_userid, to_userid, False, chat_ids=retry
                )
                moved += again.transferred
                for chat_id in retry:
                    refused.pop(chat_id)
                refused.update(again.failed)
            detail["transferred"] += len(moved)
            detail["failed"] += len(refused)
            detail["accounts"][str(account_id)] = {
                "transferred": moved,
                "failed": {chat_id: reason for chat_id, (_code, reason) in refused.items()},
            }
        return detail
