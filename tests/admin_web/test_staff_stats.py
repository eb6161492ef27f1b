"""Team statistics count customers gained (new customers a salesperson owns) and lost
(WeCom reports the customer deleted or was deleted), within the chosen dates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from conversations.access import Role, Viewer
from conversations.models import ChannelEvent, Customer, StaffUser
from conversations.stats import staff_statistics
from tests.admin_web.people import Org
from tests.system import System

DAY = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


async def _stats_of(console: System, org: Org, username: str) -> tuple[int, int]:
    async with console.services.db.reading() as s:
        rows = await staff_statistics(
            s,
            Viewer(org.staff["admin"], Role.ADMIN),
            DAY - timedelta(days=1),
            DAY + timedelta(days=1),
        )
    row = {r.name: r for r in rows}[username.upper()]
    return row.customers_gained, row.customers_lost


async def test_customers_created_in_the_period_count_as_gained(console: System, org: Org) -> None:
    async with console.services.db.transaction() as s:
        s.add(Customer(display_name="新客户", owner_id=org.staff["sales_b"], created_at=DAY))
        s.add(
            Customer(
                display_name="老客户",
                owner_id=org.staff["sales_b"],
                created_at=DAY - timedelta(days=30),
            )
        )
    assert await _stats_of(console, org, "sales_b") == (1, 0)


async def test_wecom_deletions_in_the_period_count_as_lost(console: System, org: Org) -> None:
    async with console.services.db.transaction() as s:
        staff = await s.get(StaffUser, org.staff["sales_a"])
        assert staff is not None
        staff.wecom_userid = "zhangsan"
        for n, event in enumerate(
            (
                "wecom.change_external_contact.del_follow_user",
                "wecom.change_external_contact.del_external_contact",
                "wecom.change_external_contact.add_external_contact",  # gained, not lost
            )
        ):
            s.add(
                ChannelEvent(
                    account_id=console.wecom_account_id,
                    provider_key=f"lost-{n}",
                    event_type=event,
                    external_id=f"wm{n}",
                    staff_external_id="zhangsan",
                    occurred_at=DAY,
                )
            )
    assert await _stats_of(console, org, "sales_a") == (0, 2)
