"""The rota job follows schedules: the code's user list on WeCom changes with the clock,
and an older queued update never overwrites a newer one."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from channels.wecom.codes.models import ContactCode
from channels.wecom.codes.rota import CHINA, RotaMember
from channels.wecom.codes.service import OPERATION, refresh_rotas, update_on_wecom
from conversations.models import OutboxItem
from conversations.types import AccountRef, MessageKind, Outbound, Purpose
from tests.channels.wecom.codes.world import codes_world, draft
from tests.system import System, eventually

SUNDAY_10 = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
TUESDAY_10 = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


async def _all_sent(system: System, n: int) -> bool:
    async with system.services.db.reading() as s:
        rows = (
            await s.scalars(
                select(OutboxItem.status).where(OutboxItem.idempotency_key.startswith(OPERATION))
            )
        ).all()
    return len(rows) == n and all(status == "sent" for status in rows)


async def test_schedule_change_rewrites_the_code_on_wecom(sqlite_system: System) -> None:
    world = await codes_world(sqlite_system)
    members = (RotaMember("lisi", weekdays=(0, 1, 2, 3, 4)), RotaMember("wangwu", weekdays=(5, 6)))
    code = await world.service.create(
        world.account.id, draft(rota_mode="schedule", members=members)
    )
    db = sqlite_system.services.db
    way = sqlite_system.sim.contact_ways.ways[code.config_id or ""]
    changes = [await refresh_rotas(db, CHINA, SUNDAY_10), await refresh_rotas(db, CHINA, SUNDAY_10)]
    assert changes == [int(way.user != ["wangwu"]), 0]
    await eventually(lambda: _all_sent(sqlite_system, changes[0]))
    assert way.user == ["wangwu"]
    assert await refresh_rotas(db, CHINA, TUESDAY_10) == 1
    await eventually(lambda: _all_sent(sqlite_system, changes[0] + 1))
    assert way.user == ["lisi"]


async def test_an_older_update_sent_late_is_dropped(sqlite_system: System) -> None:
    world = await codes_world(sqlite_system)
    code = await world.service.create(world.account.id, draft())
    api = await world.service.api_for(world.account.id)
    account = AccountRef(world.account.id, "wecom.contact", "contact", {}, {})

    def update(users: list[str], revision: int) -> Outbound:
        payload = {"config_id": code.config_id, "user": users, "revision": revision}
        return Outbound(
            key=f"test:{revision}",
            account=account,
            recipient="",
            kind=MessageKind.TEXT,
            text="",
            purpose=Purpose.NOTIFICATION,
            payload=payload,
        )

    await update_on_wecom(api, update(["wangwu"], 5))
    result = await update_on_wecom(api, update(["lisi"], 4))
    way = sqlite_system.sim.contact_ways.ways[code.config_id or ""]
    assert way.user == ["wangwu"]
    assert (result.provider_message_id or "").endswith("superseded")


async def test_rota_follows_the_configured_time_zone(sqlite_system: System) -> None:
    """Monday 01:00 UTC is Monday 09:00 in Shanghai but still Sunday in Los Angeles."""
    world = await codes_world(sqlite_system)
    members = (RotaMember("lisi", weekdays=(0, 1, 2, 3, 4)), RotaMember("wangwu", weekdays=(5, 6)))
    code = await world.service.create(
        world.account.id, draft(rota_mode="schedule", members=members)
    )
    db = sqlite_system.services.db
    monday_01_utc = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
    await refresh_rotas(db, ZoneInfo("America/Los_Angeles"), monday_01_utc)
    async with db.reading() as s:
        row = await s.get(ContactCode, code.id)
        assert row is not None and row.current_users == ["wangwu"]
    await refresh_rotas(db, CHINA, monday_01_utc)
    async with db.reading() as s:
        row = await s.get(ContactCode, code.id)
        assert row is not None and row.current_users == ["lisi"]
