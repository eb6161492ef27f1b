"""Reading the auto-reply tables into plain values, and the version counters."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from .faq import FaqDoc
from .hours import BusinessHours
from .lifecycle import AccountProfile
from .models import AccountReplySettings, FaqEntry, FaqTerm, IndexVersion, KeywordRule
from .rules import InvalidRule, Rule, rule_from_fields
from .templates import ReplyVariant

log = logging.getLogger(__name__)

RULES = "rules"
FAQ = "faq"
ACCOUNTS = "accounts"
INDEXES = (RULES, FAQ, ACCOUNTS)


def rule_of(row: KeywordRule) -> Rule:
    """The rule a row describes; raises `InvalidRule`."""
    return rule_from_fields(
        id=row.id,
        match=row.match,
        keywords=row.keywords,
        priority=row.priority,
        name=row.name,
        pattern=row.pattern,
        action=row.action,
        replies=row.replies,
        choice=row.choice,
        channel_kinds=row.channel_kinds,
        account_ids=row.account_ids,
        tag_ids=row.tag_ids,
        time_window=row.time_window,
    )


def faq_doc_of(row: FaqEntry) -> FaqDoc:
    return FaqDoc(
        id=row.id,
        slug=row.slug,
        question=row.question,
        alternatives=tuple(str(a) for a in row.alternatives),
        reply=ReplyVariant.from_json({"text": row.answer, "channels": row.channels}),
    )


def profile_of(row: AccountReplySettings) -> AccountProfile:
    return AccountProfile(
        hours=BusinessHours.from_json(row.timezone, row.weekly_hours, row.holidays, row.workdays),
        welcome_text=row.welcome_text,
        away_text=row.away_text,
        handoff_text=row.handoff_text,
    )


async def load_rules(session: AsyncSession) -> list[Rule]:
    """Enabled rules; a row that no longer validates is skipped and logged, not fatal."""
    rules = []
    for row in await session.scalars(select(KeywordRule).where(KeywordRule.enabled.is_(True))):
        try:
            rules.append(rule_of(row))
        except InvalidRule as exc:
            log.warning("autoreply rule %s skipped: %s", row.id, exc)
    return rules


async def load_faq(session: AsyncSession) -> tuple[list[FaqDoc], dict[str, list[str]]]:
    entries = [
        faq_doc_of(row)
        for row in await session.scalars(
            select(FaqEntry).where(FaqEntry.enabled.is_(True)).order_by(FaqEntry.id)
        )
    ]
    synonyms = {
        t.term: [str(s) for s in t.synonyms] for t in await session.scalars(select(FaqTerm))
    }
    return entries, synonyms


async def load_accounts(session: AsyncSession) -> dict[int, AccountProfile]:
    return {
        row.account_id: profile_of(row)
        for row in await session.scalars(select(AccountReplySettings))
    }


async def read_versions(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(select(IndexVersion.name, IndexVersion.version))
    found = {str(row[0]): int(row[1]) for row in rows}
    return {name: found.get(name, 0) for name in INDEXES}


async def bump_versions(session: AsyncSession, names: Iterable[str]) -> None:
    """Mark indexes stale for every process, in the caller's transaction."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    for name in names:
        await session.execute(
            insert(IndexVersion)
            .values(name=name, version=1)
            .on_conflict_do_update(
                index_elements=["name"], set_={"version": IndexVersion.version + 1}
            )
        )
