"""The dashboard shows each channel QR code's new and lost customers for the chosen
period (ConsoleDeps.dashboard_panels, wired in bot/runtime.py)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from channels.wecom.codes.models import ContactCode, ContactCodeEvent
from conversations.access import Role
from tests.channels.wecom.world import add_account
from tests.system import System

IN_PERIOD = datetime(2026, 11, 10, 4, 0, tzinfo=UTC)
BEFORE = datetime(2026, 10, 1, 4, 0, tzinfo=UTC)


async def _code_with_history(system: System) -> int:
    account = await add_account(system, "wecom.contact", "wwpanelcorp0001")
    async with system.services.db.transaction() as s:
        code = ContactCode(account_id=account.id, name="展会海报", state="expo", config_id="c1")
        s.add(code)
        await s.flush()
        for n, (kind, at) in enumerate(
            [("added", IN_PERIOD), ("added", IN_PERIOD), ("lost", IN_PERIOD), ("added", BEFORE)]
        ):
            s.add(
                ContactCodeEvent(
                    code_id=code.id,
                    account_id=account.id,
                    kind=kind,
                    external_userid=f"wm{n}",
                    userid="lisi",
                    occurred_at=at,
                )
            )
        return code.id


async def test_dashboard_counts_each_codes_customers_in_the_period(sqlite_system: System) -> None:
    code_id = await _code_with_history(sqlite_system)
    await sqlite_system.add_staff("boss", Role.MANAGER)
    async with await sqlite_system.login("boss") as http:
        page = await (
            await http.get(
                f"{sqlite_system.base}/dashboard", params={"from": "2026-11-01", "to": "2026-11-20"}
            )
        ).text()
    row = re.search(rf'<tr data-code="{code_id}">(.*?)</tr>', page, re.S)
    assert row, page[-2000:]
    assert '<td class="added">2</td>' in row.group(1)
    assert '<td class="lost">1</td>' in row.group(1)
    assert "展会海报" in row.group(1)


async def test_dashboard_has_no_code_panel_without_codes(sqlite_system: System) -> None:
    await sqlite_system.add_staff("boss", Role.MANAGER)
    async with await sqlite_system.login("boss") as http:
        page = await (await http.get(f"{sqlite_system.base}/dashboard")).text()
    assert "wecom-codes-panel" not in page
