"""The console's service functions: editing, import/export, try-a-message, hit counts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from autoreply import service
from autoreply.cache import EngineCache
from autoreply.faq_transfer import FaqImportError, FaqRow, parse_csv, parse_xlsx, to_csv, to_xlsx
from autoreply.models import FaqEntry, IndexVersion
from autoreply.rules import InvalidRule
from autoreply.settings import AutoReplySettings
from conversations.db import Database
from conversations.models import AuditEntry

ROWS = [
    FaqRow("refund", "怎么申请退款", "订单页点「申请退款」", ("退款流程", "我想退货"), "售后"),
    FaqRow("invoice", "能开发票吗", "可以，下单时填写抬头", (), "财务", enabled=False),
]


def test_csv_round_trip_keeps_chinese_and_alternatives() -> None:
    data = to_csv(ROWS)
    assert data.startswith(b"\xef\xbb\xbf")  # BOM: Excel reads UTF-8
    assert parse_csv(data) == ROWS


def test_xlsx_round_trip() -> None:
    assert parse_xlsx(to_xlsx(ROWS)) == ROWS


def test_csv_with_chinese_headers_in_gb18030() -> None:
    data = "编号,问题,相似问法,答案\nship,多久发货,什么时候发货|几天发货,48小时内\n".encode(
        "gb18030"
    )
    (row,) = parse_csv(data)
    assert row.slug == "ship" and row.alternatives == ("什么时候发货", "几天发货")


def test_import_reports_every_bad_line() -> None:
    data = "slug,question,answer\na,问题,\nb,,答案\n".encode()
    with pytest.raises(FaqImportError) as err:
        parse_csv(data)
    assert len(err.value.problems) == 2


async def test_import_upserts_by_slug_and_bumps_version(db: Database) -> None:
    async with db.transaction() as s:
        first = await service.import_faq(s, ROWS, actor_id=None)
    async with db.transaction() as s:
        again = await service.import_faq(s, ROWS[:1], actor_id=None, replace=True)
    assert (first.created, again.updated, again.removed) == (2, 1, 1)
    async with db.reading() as s:
        assert [e.slug for e in await s.scalars(select(FaqEntry))] == ["refund"]
        version = await s.get(IndexVersion, "faq")
        assert version is not None and version.version == 2
        assert await service.export_faq(s) == ROWS[:1]


async def test_invalid_rule_is_refused_with_problems(db: Database) -> None:
    async with db.transaction() as s:
        with pytest.raises(InvalidRule) as err:
            await service.create_rule(
                s, {"match": "regex", "pattern": "(", "replies": []}, actor_id=None
            )
    assert len(err.value.problems) == 2


async def test_rule_edit_is_audited(db: Database) -> None:
    async with db.transaction() as s:
        row = await service.create_rule(s, {"keywords": ["价格"], "replies": ["x"]}, actor_id=None)
        await service.update_rule(s, row.id, {"priority": 5}, actor_id=None)
    async with db.reading() as s:
        actions = [a.action for a in await s.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert actions == ["autoreply.rule.create", "autoreply.rule.update"]


async def test_explain_shows_rule_scope_and_faq_scores(db: Database) -> None:
    async with db.transaction() as s:
        await service.create_rule(
            s,
            {"name": "短信价格", "keywords": ["价格"], "replies": ["x"], "channel_kinds": ["sms"]},
            actor_id=None,
        )
        await service.import_faq(s, [FaqRow("price", "产品价格是多少", "见官网")], actor_id=None)
    cache = EngineCache(AutoReplySettings(reload_check=timedelta(0)))
    async with db.reading() as s:
        result = await service.explain(
            s, cache, "价格是多少", channel_kind="wecom.kf", account_id=1
        )
    assert result["outcome"] == "faq"
    assert result["candidates"][0]["name"] == "短信价格" and not result["candidates"][0]["in_scope"]
    assert result["faq"][0]["slug"] == "price" and result["faq"][0]["matched_terms"]


async def test_bad_business_hours_are_refused(db: Database) -> None:
    async with db.transaction() as s:
        with pytest.raises(InvalidRule, match="business hours"):
            await service.save_account_settings(
                s, 1, {"weekly_hours": {"0": [["18:00", "09:00"]]}}, actor_id=None
            )
