"""The audit log for admins (issue 9): free-text search, paging past one page, and an
audited CSV export of exactly the rows the filters select."""

from __future__ import annotations

import csv
import io
import re

from sqlalchemy import func, select

from admin_web.audit_views import PAGE, filtered
from conversations.access import Role
from conversations.actions import audit
from conversations.db import Database
from conversations.models import AuditEntry, StaffUser
from tests.admin_web.people import Org
from tests.system import System


async def _entries(db: Database, staff_id: int | None = None) -> None:
    async with db.transaction() as s:
        await audit(
            s,
            "view_conversation",
            actor_id=staff_id,
            target_type="conversation",
            target_id=17,
            detail={"customer": "王小明"},
        )
        await audit(
            s,
            "role_change",
            actor_id=staff_id,
            target_type="staff",
            target_id=4,
            detail={"from": "sales", "to": "manager"},
        )
        await audit(
            s, "export", actor_id=None, target_type="search", detail={"query": {"q": "报价 100%"}}
        )


async def _search(db: Database, q: str) -> list[str]:
    async with db.reading() as s:
        return [e.action for e in (await s.scalars(filtered({"q": q}))).all()]


async def test_search_finds_chinese_text_in_the_detail(db: Database) -> None:
    await _entries(db)
    assert await _search(db, "王小明") == ["view_conversation"]


async def test_search_matches_the_actor_by_name(db: Database) -> None:
    async with db.transaction() as s:
        user = StaffUser(
            username="lina", display_name="李娜", role=Role.ADMIN.value, password_hash="x"
        )
        s.add(user)
        await s.flush()
        staff_id = user.id
    await _entries(db, staff_id)
    assert sorted(await _search(db, "李娜")) == ["role_change", "view_conversation"]


async def test_every_search_word_must_match(db: Database) -> None:
    await _entries(db)
    assert await _search(db, "staff manager") == ["role_change"]
    assert await _search(db, "staff 王小明") == []


async def test_percent_sign_is_searched_literally(db: Database) -> None:
    await _entries(db)
    assert await _search(db, "100%") == ["export"]
    assert await _search(db, "0%") == ["export"]
    assert await _search(db, "%") == ["export"]


async def test_pages_go_back_beyond_the_first_hundred(console: System, org: Org) -> None:
    async with console.services.db.transaction() as s:
        for i in range(PAGE + 5):
            await audit(s, "bulk_probe", actor_id=None, target_type="probe", target_id=i)
    http = await console.login("admin")
    try:
        first = await (await http.get(f"{console.base}/audit", params={"q": "bulk_probe"})).text()
        older = re.search(r'href="(/audit\?[^"]*before=\d+[^"]*)" rel="next"', first)
        assert older
        second = await (await http.get(console.base + older.group(1).replace("&amp;", "&"))).text()
    finally:
        await http.close()
    assert first.count("<td>bulk_probe</td>") == PAGE
    assert second.count("<td>bulk_probe</td>") == 5
    assert "probe 0<" in second and "probe 104<" not in second


async def test_export_holds_the_filtered_rows_and_is_audited(console: System, org: Org) -> None:
    await _entries(console.services.db)
    http = await console.login("admin")
    try:
        resp = await http.get(f"{console.base}/audit/export.csv", params={"q": "王小明"})
        assert resp.status == 200
        body = (await resp.read()).decode("utf-8-sig")
    finally:
        await http.close()
    rows = list(csv.reader(io.StringIO(body)))
    assert [r[2] for r in rows[1:]] == ["view_conversation"]
    assert "王小明" in rows[1][5]
    async with console.services.db.reading() as s:
        exported = (
            await s.scalars(select(AuditEntry).where(AuditEntry.target_type == "audit_log"))
        ).one()
    assert exported.actor_id == org.staff["admin"]
    assert exported.detail == {"query": {"q": "王小明"}, "rows": 1, "format": "csv"}


async def test_manager_cannot_export_the_audit_log(console: System, org: Org) -> None:
    http = await console.login("manager_a")
    try:
        resp = await http.get(f"{console.base}/audit/export.csv")
    finally:
        await http.close()
    assert resp.status == 403
    async with console.services.db.reading() as s:
        count = await s.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.target_type == "audit_log")
        )
    assert count == 0
