"""Issue 13's end-to-end sandbox scenario: a code with a rota of two salespeople and a
source tag → two customers scan → alternately assigned, tagged, welcomed with the
code's message → one leaves → the code's statistics show 2 added, 1 lost."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import aiohttp
from sqlalchemy import select

from channels.wecom.codes.models import ContactCodeEvent
from channels.wecom.codes.rota import CHINA
from channels.wecom.codes.stats import code_stats
from channels.wecom.models import FollowRelation
from channels.wecom.simulator.scenarios import customer_deletes_salesperson, customer_scans_code
from conversations.access import Role
from conversations.db import utcnow
from conversations.models import Customer
from tagging.tags import tags_of
from tests.channels.wecom.codes.world import codes_world, draft
from tests.system import System, eventually


async def _events(system: System, kind: str) -> list[ContactCodeEvent]:
    async with system.services.db.reading() as s:
        rows = await s.scalars(select(ContactCodeEvent).where(ContactCodeEvent.kind == kind))
        return list(rows.all())


async def test_two_scans_alternate_are_tagged_welcomed_and_one_loss_is_counted(
    system: System,
) -> None:
    world = await codes_world(system)
    code = await world.service.create(world.account.id, draft(tag_ids=(world.tags["海报"],)))
    sim = system.sim
    way = sim.contact_ways.ways[code.config_id or ""]
    assert way.user == ["lisi"] and way.state == "poster-metro"
    reached: list[str] = []
    customers: list[str] = []
    async with aiohttp.ClientSession() as http:
        for n, name in enumerate(("王先生", "赵女士"), start=1):
            ext, userid, status = await customer_scans_code(
                http, sim, world.account.app, world.callback_url, "poster-metro", name
            )
            assert status == 200
            reached.append(userid)
            customers.append(ext)
            # the rota moved on: WeCom's code now shows the other salesperson
            await eventually(lambda n=n: _count(sim.contact_ways.updates, n))
        await eventually(lambda: _count(sim.contacts.welcomes, 2))
        await customer_deletes_salesperson(
            http, sim, world.account.app, world.callback_url, reached[0], customers[0]
        )
    assert reached == ["lisi", "wangwu"]
    assert [u["user"] for u in sim.contact_ways.updates] == [["wangwu"], ["lisi"]]
    assert [(w["userid"], w["text"], w["attachments"]) for w in sim.contacts.welcomes] == [
        (user, "感谢扫码！地铁海报专享优惠", list(draft().welcome_attachments)) for user in reached
    ]
    await eventually(lambda: _events(system, "lost"))
    async with system.services.db.reading() as s:
        relations = (await s.scalars(select(FollowRelation))).all()
        owners = {r.external_userid: r.customer_id for r in relations}
        for ext, userid in zip(customers, reached, strict=True):
            customer = await s.get(Customer, owners[ext])
            assert customer is not None
            assert customer.owner_id == (world.staff[userid] if ext != customers[0] else None)
            assert customer.profile["source"] == "渠道活码:地铁海报"
            assert [t.tag_id for t in await tags_of(s, customer.id)] == [world.tags["海报"]]
        stats = await code_stats(
            s,
            code.id,
            start=utcnow() - timedelta(days=1),
            end=utcnow() + timedelta(days=1),
            tz=CHINA,
        )
    assert (stats.added, stats.lost) == (2, 1)
    # and the marketer sees the same on the code's statistics page
    await system.add_staff("marketer", Role.MARKETER)
    async with await system.login("marketer") as console:
        page = await (await console.get(f"{system.base}/wecom/codes/{code.id}")).text()
    assert '<dd class="added">2</dd>' in page and '<dd class="lost">1</dd>' in page


async def _count(items: list[Any], n: int) -> bool:
    return len(items) >= n
