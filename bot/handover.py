"""The provider side of a console hand-over as a list of parts (customers on WeCom now,
customer groups from the groups helper later), run after the store-side commit.

Each part is `async (handover_id) -> detail`; its detail lands in
`Handover.transfer_detail[part.name]`. The record goes pending → running → done |
failed, and only a pending record is started, so a double submit or a re-run never
asks WeCom twice (a customer may be handed over only twice per 90 days).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Sequence
from typing import Any, Protocol

from sqlalchemy import update

from conversations.db import Database
from conversations.handover import Handover

log = logging.getLogger(__name__)


class HandoverPart(Protocol):
    name: str

    def __call__(self, handover_id: int) -> Awaitable[dict[str, Any]]: ...


class HandoverTransfers:
    """`conversations.handover.CustomerTransfer` over several parts."""

    def __init__(self, db: Database, parts: Sequence[HandoverPart] = ()) -> None:
        self.db = db
        self.parts: list[HandoverPart] = list(parts)

    async def __call__(self, handover_id: int) -> None:
        async with self.db.transaction() as s:
            claimed = await s.execute(
                update(Handover)
                .where(Handover.id == handover_id, Handover.transfer_status == "pending")
                .values(transfer_status="running")
            )
        if not getattr(claimed, "rowcount", 0):
            return  # another run has it, or there is nothing to transfer
        detail: dict[str, Any] = {}
        status = "done"
        for part in self.parts:
            try:
                detail[part.name] = await part(handover_id)
            except Exception as exc:  # noqa: BLE001  (recorded on the hand-over; other parts go on)
                log.exception("handover=%s part %s failed", handover_id, part.name)
                detail[part.name] = {"error": str(exc) or type(exc).__name__}
                status = "failed"
        async with self.db.transaction() as s:
            record = await s.get(Handover, handover_id)
            assert record is not None
            record.transfer_status = status
            record.transfer_detail = detail
