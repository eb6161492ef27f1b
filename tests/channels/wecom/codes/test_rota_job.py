"""The rota job follows schedules: the code's user list on WeCom changes with the clock."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from channels.wecom.codes.rota import RotaMember
from channels.wecom.codes.service import refresh_rotas
from tests.channels.wecom.codes.world import codes_world, draft
from tests.system import System, eventually

SUNDAY_10 = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
TUESDAY_10 = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


async def _has(items: list[Any], n: int) -> bool:
    return len(items) >= n


async def test_schedule_change_rewrites_the_code_on_wecom_once(sqlite_system: System) -> None:
    world = await codes_world(sqlite_system)
    members = (RotaMember("lisi", weekdays=(0, 1, 2, 3, 4)), RotaMember("wangwu", weekdays=(5, 6)))
    code = await world.service.create(
        world.account.id, draft(rota_mode="schedule", members=members)
    )
    db = sqlite_system.services.db
    start = list(sqlite_system.sim.contact_ways.ways[code.config_id or ""].user)
    changes = [await refresh_rotas(db, SUNDAY_10), await refresh_rotas(db, SUNDAY_10)]
    changes.append(await refresh_rotas(db, TUESDAY_10))
    updates = sqlite_system.sim.contact_ways.updates
    expected = [["wangwu"], ["lisi"]] if start == ["lisi"] else [["lisi"]]
    await eventually(lambda: _has(updates, len(expected)))
    assert [u["user"] for u in updates] == expected
    assert sum(changes) == len(expected)
