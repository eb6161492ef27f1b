"""A broadcast's page follows its runs: `?partial=runs` returns just the runs, marked
live while one is under way so the page keeps re-fetching, and still once it is done."""

from __future__ import annotations

from sqlalchemy import update

from broadcasts.models import Broadcast, BroadcastRun, RunStatus
from conversations.db import utcnow
from tests.admin_web.people import Org
from tests.system import System


async def _runs_part(console: System, broadcast_id: int) -> str:
    http = await console.login("marketer")
    try:
        url = f"{console.base}/broadcasts/{broadcast_id}?partial=runs"
        return await (await http.get(url)).text()
    finally:
        await http.close()


async def _broadcast_with_run(console: System, status: RunStatus) -> int:
    async with console.services.db.transaction() as s:
        broadcast = Broadcast(name="周末活动", audience={"kind": "customers"})
        s.add(broadcast)
        await s.flush()
        s.add(BroadcastRun(broadcast_id=broadcast.id, fire_time=utcnow(), status=status.value))
        return broadcast.id


async def test_runs_part_is_live_while_a_run_is_sending(console: System, org: Org) -> None:
    part = await _runs_part(console, await _broadcast_with_run(console, RunStatus.SENDING))
    assert 'id="runs" data-runs-live="1"' in part
    assert "<header" not in part  # only the runs, not the whole page


async def test_runs_part_stops_being_live_when_the_run_completed(console: System, org: Org) -> None:
    broadcast_id = await _broadcast_with_run(console, RunStatus.SENDING)
    async with console.services.db.transaction() as s:
        await s.execute(
            update(BroadcastRun)
            .where(BroadcastRun.broadcast_id == broadcast_id)
            .values(status=RunStatus.COMPLETED.value)
        )
    assert 'id="runs" data-runs-live="0"' in await _runs_part(console, broadcast_id)
