"""Managers' tools: search and audited export, per-salesperson statistics, hand-over,
dashboards; users, roles and the audit log for admins."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from conversations.access import Role, Viewer
from conversations.handover import Handover, hand_over
from conversations.models import AuditEntry, Conversation, Customer, Message, StaffUser
from conversations.stats import staff_statistics
from tests.admin_web.people import Org, csrf_of, seed_org
from tests.system import System


async def _actions(console: System) -> list[str]:
    async with console.services.db.reading() as s:
        return list((await s.scalars(select(AuditEntry.action).order_by(AuditEntry.id))).all())


async def test_manager_searches_the_teams_history(console: System) -> None:
    await seed_org(console, {"sales_a2": ["请问价格有优惠吗"], "sales_b": ["价格优惠多少"]})
    http = await console.login("manager_a")
    try:
        page = await (await http.get(f"{console.base}/search", params={"q": "价格 优惠"})).text()
    finally:
        await http.close()
    assert "请问价格有优惠吗" in page
    assert "价格优惠多少" not in page  # team B's conversation


async def test_export_is_audited_and_readable(console: System) -> None:
    await seed_org(console, {"sales_a": ["想了解报价", "报价发我邮箱"]})
    http = await console.login("admin")
    try:
        resp = await http.get(
            f"{console.base}/search/export", params={"q": "报价", "format": "csv"}
        )
        body = (await resp.read()).decode("utf-8-sig")
        xlsx = await (
            await http.get(f"{console.base}/search/export", params={"q": "报价", "format": "xlsx"})
        ).read()
    finally:
        await http.close()
    rows = list(csv.reader(io.StringIO(body)))
    assert {r[-1] for r in rows[1:]} == {"想了解报价", "报价发我邮箱"}
    sheet = zipfile.ZipFile(io.BytesIO(xlsx)).read("xl/worksheets/sheet1.xml").decode()
    assert "报价发我邮箱" in sheet
    assert (await _actions(console)).count("export") == 2


async def test_sales_cannot_export(console: System, org: Org) -> None:
    http = await console.login("sales_a")
    try:
        resp = await http.get(f"{console.base}/search/export", params={"q": "你好"})
        assert resp.status == 403
    finally:
        await http.close()


async def test_statistics_measure_response_times_and_unanswered(console: System, org: Org) -> None:
    base = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    async with console.services.db.transaction() as s:
        conv_a = org.conversations["sales_a"]
        for minutes, direction, staff in (
            (10, "out", "sales_a"),
            (20, "in", None),
            (50, "out", "sales_a"),
        ):
            s.add(
                Message(
                    conversation_id=conv_a,
                    account_id=console.wecom_account_id,
                    direction=direction,
                    kind="text",
                    text="x",
                    sender_type="staff" if staff else "customer",
                    sender_staff_id=org.staff[staff] if staff else None,
                    status="sent",
                    occurred_at=base + timedelta(minutes=minutes),
                )
            )
        conv_a2 = await s.get(Conversation, org.conversations["sales_a2"])
        assert conv_a2 is not None
        conv_a2.last_inbound_at = base
    async with console.services.db.reading() as s:
        rows = await staff_statistics(
            s,
            Viewer(org.staff["manager_a"], Role.MANAGER, org.teams["A"]),
            base - timedelta(days=1),
            base + timedelta(days=1),
        )
    by_name = {r.name: r for r in rows}
    assert set(by_name) == {"MANAGER_A", "SALES_A", "SALES_A2"}  # team A only
    a = by_name["SALES_A"]
    # seeded inbound at 09:00:00 → reply 09:10 (first, 600 s); inbound 09:20 → reply 09:50
    assert a.first_response_seconds == [600.0]
    assert a.response_seconds == [600.0, 1800.0]
    assert (a.conversations_handled, a.replies, a.unanswered) == (1, 2, 0)
    assert by_name["SALES_A2"].unanswered == 1
    assert a.customers_gained == 0  # the seeded customers were created "now", not in Nov 20


async def test_handover_moves_customers_and_conversations(console: System, org: Org) -> None:
    async with console.services.db.transaction() as s:
        record = await hand_over(
            s,
            Viewer(org.staff["manager_a"], Role.MANAGER, org.teams["A"]),
            from_staff_id=org.staff["sales_a"],
            to_staff_id=org.staff["sales_a2"],
        )
        assert (record.customers, record.conversations) == (1, 1)
    async with console.services.db.reading() as s:
        conv = await s.get(Conversation, org.conversations["sales_a"])
        customer = await s.get(Customer, org.customers["sales_a"])
        giver = await s.get(StaffUser, org.staff["sales_a"])
        assert conv is not None and customer is not None and giver is not None
        assert conv.assignee_id == customer.owner_id == org.staff["sales_a2"]
        assert not giver.active
        assert len((await s.scalars(select(Handover))).all()) == 1
    assert "handover" in await _actions(console)


async def test_manager_cannot_hand_over_to_another_team(console: System, org: Org) -> None:
    async with console.services.db.transaction() as s:
        try:
            await hand_over(
                s,
                Viewer(org.staff["manager_a"], Role.MANAGER, org.teams["A"]),
                from_staff_id=org.staff["sales_a"],
                to_staff_id=org.staff["sales_b"],
            )
        except PermissionError:
            return
    raise AssertionError("cross-team hand-over allowed")


async def test_handover_page_calls_the_transfer_hook(console: System, org: Org) -> None:
    from tests.admin_web.people import console_deps

    called: list[int] = []

    async def transfer(handover_id: int) -> None:
        called.append(handover_id)

    async with console.services.db.transaction() as s:
        giver = await s.get(StaffUser, org.staff["sales_a"])
        assert giver is not None
        giver.wecom_userid = "zhangsan"
    console_deps(console).customer_transfer = transfer
    http = await console.login("admin")
    try:
        csrf = await csrf_of(http, f"{console.base}/settings/handover")
        resp = await http.post(
            f"{console.base}/settings/handover",
            data={
                "_csrf": csrf,
                "from": str(org.staff["sales_a"]),
                "to": str(org.staff["sales_a2"]),
                "deactivate": "1",
            },
            allow_redirects=False,
        )
        assert resp.status == 302
    finally:
        await http.close()
    from tests.system import eventually

    async def done() -> list[int]:
        return called

    assert len(await eventually(done)) == 1


async def test_dashboard_draws_messages_per_day(console: System, org: Org) -> None:
    http = await console.login("manager_a")
    try:
        page = await (
            await http.get(
                f"{console.base}/dashboard", params={"from": "2026-11-19", "to": "2026-11-21"}
            )
        ).text()
    finally:
        await http.close()
    # the four seeded messages of Nov 20 (Beijing) as one bar
    assert re.search(r"<title>[^<]*11-20: 4</title>", page), page[:3000]


async def test_role_change_is_audited(console: System, org: Org) -> None:
    http = await console.login("admin")
    try:
        csrf = await csrf_of(http, f"{console.base}/settings/users")
        await http.post(
            f"{console.base}/settings/users/{org.staff['sales_b']}/role",
            data={"_csrf": csrf, "role": "manager", "team": str(org.teams["B"])},
        )
        audit_page = await (
            await http.get(f"{console.base}/audit", params={"action": "permission_changed"})
        ).text()
    finally:
        await http.close()
    async with console.services.db.reading() as s:
        user = await s.get(StaffUser, org.staff["sales_b"])
        assert user is not None and user.role == "manager"
        entry = (
            await s.scalars(select(AuditEntry).where(AuditEntry.action == "permission_changed"))
        ).one()
    assert entry.detail["before"]["role"] == "sales"
    assert "permission_changed" in audit_page


async def test_admin_creates_a_user_with_the_password_policy(console: System, org: Org) -> None:
    http = await console.login("admin")
    try:
        csrf = await csrf_of(http, f"{console.base}/settings/users")
        weak = await http.post(
            f"{console.base}/settings/users",
            data={"_csrf": csrf, "username": "new1", "password": "short", "role": "sales"},
            allow_redirects=False,
        )
        assert weak.headers["Location"].endswith("error=password")
        await http.post(
            f"{console.base}/settings/users",
            data={"_csrf": csrf, "username": "new1", "password": "long-enough-1", "role": "sales"},
        )
    finally:
        await http.close()
    async with console.services.db.reading() as s:
        assert await s.scalar(select(StaffUser.id).where(StaffUser.username == "new1"))
