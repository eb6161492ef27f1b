"""The WeCom part of a console hand-over (conversations.handover): the departed
salesperson's external contacts move to the taker on every 客户联系 account.

离职继承 (resigned/transfer_customer) when the giver has left WeCom, else 在职继承
(transfer_customer). WeCom answers 40097 when the giver is still a member, so an
inactive giver is tried as resigned first and falls back to on-job. Each customer's
result is a `TransferRecord` (polled later by `transfer.poll_open_transfers`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.db import Database
from conversations.handover import Handover
from conversations.models import ChannelAccount, StaffUser

from .api import WeComApi
from .errors import WeComApiError
from .models import FollowRelation
from .transfer import transfer_customers

log = logging.getLogger(__name__)

NOT_RESIGNED = 40097
ApiFor = Callable[[int], Awaitable[WeComApi]]


@dataclass(frozen=True)
class Parties:
    """Who hands over to whom, in WeCom's terms."""

    giver_userid: str
    taker_userid: str
    giver_left: bool  # deactivated in crmbot: try 离职继承 first
    requested_by: int | None


async def handover_parties(session: AsyncSession, handover_id: int) -> Parties | None:
    """The hand-over's salespeople by WeCom userid; None when one of them has none."""
    record = await session.get(Handover, handover_id)
    if record is None:
        raise LookupError(f"no hand-over {handover_id}")
    giver = await session.get(StaffUser, record.from_staff_id)
    taker = await session.get(StaffUser, record.to_staff_id)
    assert giver is not None and taker is not None
    if not giver.wecom_userid or not taker.wecom_userid:
        return None
    return Parties(giver.wecom_userid, taker.wecom_userid, not giver.active, record.by_staff_id)


NO_USERID = {"skipped": "no WeCom userid on one of the salespeople"}


class WeComCustomerTransfer:
    """A hand-over part: `await part(handover_id)` → what happened, for the record."""

    name = "wecom_customers"

    def __init__(self, db: Database, api_for: ApiFor) -> None:
        self.db = db
        self.api_for = api_for

    async def __call__(self, handover_id: int) -> dict[str, Any]:
        async with self.db.reading() as s:
            parties = await handover_parties(s, handover_id)
            if parties is None:
                return dict(NO_USERID)
            relations = (
                await s.execute(
                    select(FollowRelation.account_id, FollowRelation.external_userid)
                    .join(ChannelAccount, ChannelAccount.id == FollowRelation.account_id)
                    .where(
                        ChannelAccount.kind == "wecom.contact",
                        ChannelAccount.enabled.is_(True),
                        FollowRelation.userid == parties.giver_userid,
                        FollowRelation.status == "active",
                    )
                    .order_by(FollowRelation.account_id, FollowRelation.id)
                )
            ).all()
        giver_left, requested_by = parties.giver_left, parties.requested_by
        handover_userid, takeover_userid = parties.giver_userid, parties.taker_userid
        by_account: dict[int, list[str]] = {}
        for account_id, external_userid in relations:
            by_account.setdefault(account_id, []).append(external_userid)
        detail: dict[str, Any] = {"requested": 0, "failed": 0, "accounts": {}}
        for account_id, customers in by_account.items():
            api = await self.api_for(account_id)

            async def start(
                resigned: bool,
                api: WeComApi = api,
                aid: int = account_id,
                ids: list[str] = customers,
            ) -> Any:
                return await transfer_customers(
                    self.db,
                    api,
                    aid,
                    handover_userid=handover_userid,
                    takeover_userid=takeover_userid,
                    external_userids=ids,
                    resigned=resigned,
                    requested_by=requested_by,
                )

            resigned = giver_left
            try:
                records = await start(resigned)
            except WeComApiError as exc:
                if not (resigned and exc.errcode == NOT_RESIGNED):
                    raise
                # deactivated in crmbot but still a WeCom member: 在职继承 instead
                resigned = False
                records = await start(resigned)
            ok = sum(r.status == "requested" for r in records)
            detail["requested"] += ok
            detail["failed"] += len(records) - ok
            detail["accounts"][str(account_id)] = {
                "mode": "resigned" if resigned else "onjob",
                "requested": ok,
                "failed": len(records) - ok,
            }
            log.info(
                "handover=%s account=%s: %d customers handed over (%s), %d refused",
                handover_id,
                account_id,
                ok,
                "resigned" if resigned else "onjob",
                len(records) - ok,
            )
        return detail
