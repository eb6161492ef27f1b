"""Hand-over of customers between salespeople (issue 3): 在职继承 transfer_customer and
离职继承 resigned/transfer_customer, ≤100 customers per call, results recorded.

errcode 0 only means "hand-over started": WeCom completes it within 24 h unless the
customer refuses; `poll_results` reads transfer_result (status 1 done, 2 waiting,
3 refused, 4 takeover at customer limit) into the records. A customer can be handed
over twice per 90 days (per-customer errcode 40128 then).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

from sqlalchemy import select

from conversations.db import Database, utcnow

from .api import WeComApi
from .errors import READABLE
from .models import TransferRecord

BATCH = 100
STATUS = {1: "done", 2: "waiting", 3: "refused", 4: "limit"}


def _paths(resigned: bool) -> tuple[str, str]:
    base = "/cgi-bin/externalcontact/" + ("resigned/" if resigned else "")
    return base + "transfer_customer", base + "transfer_result"


async def transfer_customers(
    db: Database,
    api: WeComApi,
    account_id: int,
    *,
    handover_userid: str,
    takeover_userid: str,
    external_userids: Sequence[str],
    resigned: bool = False,
    requested_by: int | None = None,
    message: str | None = None,
) -> list[TransferRecord]:
    """Start hand-overs in batches of 100; one record per customer with its errcode."""
    path, _ = _paths(resigned)
    records: list[TransferRecord] = []
    ids = list(dict.fromkeys(external_userids))
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        body: dict[str, object] = {
            "handover_userid": handover_userid,
            "takeover_userid": takeover_userid,
            "external_userid": chunk,
        }
        if message and not resigned:
            body["transfer_success_msg"] = message[:200]
        data = await api.call("POST", path, body=body)
        codes = {
            str(c["external_userid"]): int(c.get("errcode", 0)) for c in data.get("customer") or []
        }
        async with db.transaction() as s:
            for ext in chunk:
                code = codes.get(ext, 0)
                record = TransferRecord(
                    account_id=account_id,
                    resigned=resigned,
                    handover_userid=handover_userid,
                    takeover_userid=takeover_userid,
                    external_userid=ext,
                    errcode=code,
                    status="requested" if code == 0 else "failed",
                    reason=None if code == 0 else READABLE.get(code, f"errcode {code}"),
                    requested_by=requested_by,
                )
                s.add(record)
                records.append(record)
    return records


async def poll_results(
    db: Database,
    api: WeComApi,
    account_id: int,
    *,
    handover_userid: str,
    takeover_userid: str,
    resigned: bool = False,
) -> int:
    """Read transfer_result into the open records of this pair; how many changed."""
    _, path = _paths(resigned)
    changed = 0
    cursor = ""
    while True:
        body: dict[str, object] = {
            "handover_userid": handover_userid,
            "takeover_userid": takeover_userid,
        }
        if cursor:
            body["cursor"] = cursor
        data = await api.call("POST", path, body=body)
        async with db.transaction() as s:
            for row in data.get("customer") or []:
                status = STATUS.get(int(row.get("status", 2)), "waiting")
                records = (
                    await s.scalars(
                        select(TransferRecord).where(
                            TransferRecord.account_id == account_id,
                            TransferRecord.resigned.is_(resigned),
                            TransferRecord.handover_userid == handover_userid,
                            TransferRecord.takeover_userid == takeover_userid,
                            TransferRecord.external_userid == row["external_userid"],
                            TransferRecord.status.in_(("requested", "waiting")),
                        )
                    )
                ).all()
                for record in records:
                    if record.status != status:
                        record.status = status
                        record.updated_at = utcnow()
                        changed += 1
                    if row.get("takeover_time"):
                        record.takeover_at = datetime.fromtimestamp(int(row["takeover_time"]), UTC)
        cursor = str(data.get("next_cursor") or "")
        if not cursor:
            return changed


ApiFor = Callable[[int], Awaitable[WeComApi]]


async def poll_open_transfers(db: Database, api_for: ApiFor) -> int:
    """The scheduled job: poll transfer_result for every pair with open hand-overs."""
    async with db.reading() as s:
        pairs = (
            await s.execute(
                select(
                    TransferRecord.account_id,
                    TransferRecord.handover_userid,
                    TransferRecord.takeover_userid,
                    TransferRecord.resigned,
                )
                .where(TransferRecord.status.in_(("requested", "waiting")))
                .distinct()
            )
        ).all()
    changed = 0
    for account_id, handover, takeover, resigned in pairs:
        changed += await poll_results(
            db,
            await api_for(account_id),
            account_id,
            handover_userid=handover,
            takeover_userid=takeover,
            resigned=resigned,
        )
    return changed
