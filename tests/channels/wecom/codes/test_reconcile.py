"""A code reserved ("creating") but never completed — the process died between the
reservation and WeCom's answer — is settled: completed from WeCom when WeCom made it,
removed when it did not, so its state is never blocked for good."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from channels.wecom.codes.models import ContactCode
from channels.wecom.codes.service import reconcile_creating
from conversations.db import utcnow
from tests.channels.wecom.codes.world import CodesWorld, codes_world, draft
from tests.system import System


async def _reserve(world: CodesWorld, state: str, age: timedelta) -> int:
    async with world.system.services.db.transaction() as s:
        row = ContactCode(
            account_id=world.account.id,
            name="断电前",
            state=state,
            status="creating",
            current_users=["lisi"],
            created_at=utcnow() - age,
        )
        s.add(row)
        await s.flush()
        return row.id


async def _row(world: CodesWorld, code_id: int) -> ContactCode | None:
    async with world.system.services.db.reading() as s:
        return await s.get(ContactCode, code_id)


async def test_code_wecom_made_is_completed(sqlite_system: System) -> None:
    world = await codes_world(sqlite_system)
    api = await world.service.api_for(world.account.id)
    # WeCom made the code; its answer was lost with the process
    made = await api.call(
        "POST",
        "/cgi-bin/externalcontact/add_contact_way",
        body={"type": 1, "scene": 2, "state": "crash-after", "user": ["lisi"]},
    )
    code_id = await _reserve(world, "crash-after", timedelta(minutes=5))
    assert await reconcile_creating(sqlite_system.services.db, world.service.api_for) == 1
    row = await _row(world, code_id)
    assert row is not None
    assert (row.status, row.config_id) == ("active", made["config_id"])
    assert row.qr_code.endswith(".png")


async def test_code_wecom_never_made_is_removed(sqlite_system: System) -> None:
    world = await codes_world(sqlite_system)
    code_id = await _reserve(world, "crash-before", timedelta(minutes=5))
    assert await reconcile_creating(sqlite_system.services.db, world.service.api_for) == 1
    assert await _row(world, code_id) is None


async def test_creation_still_in_flight_is_left_alone(sqlite_system: System) -> None:
    world = await codes_world(sqlite_system)
    code_id = await _reserve(world, "in-flight", timedelta(seconds=10))
    assert await reconcile_creating(sqlite_system.services.db, world.service.api_for) == 0
    row = await _row(world, code_id)
    assert row is not None and row.status == "creating"


async def test_next_create_of_the_state_frees_a_stale_reservation(sqlite_system: System) -> None:
    world = await codes_world(sqlite_system)
    await _reserve(world, "poster-metro", timedelta(minutes=5))
    code = await world.service.create(world.account.id, draft(state="poster-metro"))
    async with sqlite_system.services.db.reading() as s:
        rows = (
            await s.scalars(select(ContactCode).where(ContactCode.state == "poster-metro"))
        ).all()
    assert [(r.id, r.status) for r in rows] == [(code.id, "active")]
    assert code.config_id in sqlite_system.sim.contact_ways.ways
