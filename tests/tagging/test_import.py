"""Customer import validation (dry-run first) and export."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select

from conversations.db import Database
from conversations.models import Customer
from tagging.importing import export_rows, import_customers, read_table, rows_to_csv, rows_to_xlsx
from tagging.models import CustomerProfile
from tagging.tags import TagRef, ensure_tag, tags_of
from tests.tagging import factories as f

TODAY = date(2026, 11, 23)
CSV = (
    "姓名,手机,邮箱,性别,生日,地址,标签,爱好\n"
    "陈一,13800138000,chen@example.com,男,1990-01-02,,意向/询价,钓鱼;跑步\n"
    "坏号,12345,,女,,,,\n"
    "坏邮箱,,not-an-email,,,,,\n"
    "坏标签,13900000001,,x,,,意向/不存在,\n"
    "陈一again,138 0013 8000,,,,,,\n"
    "老客户,+8613530012345,,,,广东省深圳市南山区,,\n"
)


async def test_dry_run_reports_each_problem_by_row_and_field(db: Database) -> None:
    async with db.transaction() as s:
        await ensure_tag(s, TagRef.parse("意向/询价"))
        report = await import_customers(s, CSV.encode(), "customers.csv", today=TODAY)
        created = await s.scalar(select(func.count()).select_from(Customer))
    assert [(e.row, e.field) for e in report.errors] == [
        (2, "phone"),
        (3, "email"),
        (4, "gender"),
        (4, "tags"),
        (5, "phone"),
    ]
    assert "same person as row 1" in report.errors[-1].reason
    assert (report.rows, report.valid, created) == (6, 2, 0)


async def test_import_creates_valid_rows_and_updates_exact_matches(db: Database) -> None:
    async with db.transaction() as s:
        await ensure_tag(s, TagRef.parse("意向/询价"))
        old = await f.customer(s, "老客户", phone="+8613530012345")
        report = await import_customers(
            s, CSV.encode(), "customers.csv", today=TODAY, dry_run=False
        )
        chen = await s.scalar(select(Customer).where(Customer.phone == "+8613800138000"))
        assert chen is not None
        chen_profile = await s.get(CustomerProfile, chen.id)
        old_profile = await s.get(CustomerProfile, old.id)
        chen_tags = [t.name for t in await tags_of(s, chen.id)]
    assert (report.created, report.updated, report.will_update) == (1, 1, {6: old.id})
    assert chen_profile is not None and chen_profile.gender == "male"
    assert (chen_profile.province, chen_profile.age_bracket) == ("北京", "35-44")
    assert old_profile is not None and old_profile.address == "广东省深圳市南山区"
    assert chen_tags == ["询价"]


async def test_gbk_csv_from_excel_is_read(sqlite_db: Database) -> None:
    rows = read_table("姓名,手机\n张三,13800138000\n".encode("gb18030"), "a.csv")
    assert rows == [{"姓名": "张三", "手机": "13800138000"}]


async def test_export_then_import_xlsx_round_trips(sqlite_db: Database) -> None:
    async with sqlite_db.transaction() as s:
        await f.customer(s, "导出", phone="+8613800138000", province="北京", tags=("意向/询价",))
        rows = await export_rows(s)
    data = rows_to_xlsx(rows)
    table = read_table(data, "export.xlsx")
    assert table[0]["姓名"] == "导出" and table[0]["标签"] == "意向/询价"
    assert rows_to_csv(rows).startswith("\ufeffid,".encode())


def test_formula_cells_are_defused_in_exports() -> None:
    data = rows_to_csv([["name"], ["=HYPERLINK(1)"], ["+8613800138000"]])
    assert data.decode("utf-8-sig").splitlines()[1:] == ["'=HYPERLINK(1)", "+8613800138000"]
