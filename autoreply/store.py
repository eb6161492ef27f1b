"""Reading the auto-reply tables into plain values, and the version counters."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Text, select, type_coerce
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


# the columns a rule is compiled from, read as plain rows (no ORM objects: a third of
# a 10,000-rule rebuild went into building and tracking KeywordRule instances)
_RULE_COLUMNS = (
    KeywordRule.id,
    KeywordRule.match,
    KeywordRule.keywords,
    KeywordRule.priority,
    KeywordRule.name,
    KeywordRule.pattern,
    KeywordRule.action,
    KeywordRule.replies,
    KeywordRule.choice,
    KeywordRule.channel_kinds,
    KeywordRule.account_ids,
    KeywordRule.tag_ids,
    KeywordRule.time_window,
)
_RULE_FIELDS = tuple(c.key for c in _RULE_COLUMNS[1:])
_JSON_FIELDS = frozenset(
    ("keywords", "replies", "channel_kinds", "account_ids", "tag_ids", "time_window")
)
# JSON columns come back as their text: decoding 60,000 documents on the event loop
# blocked it for a third of a second per rebuild; the worker thread decodes them, and
# only for rows that changed
_RULE_SELECT = tuple(
    type_coerce(c, Text).label(c.key) if c.key in _JSON_FIELDS else c for c in _RULE_COLUMNS
)


@dataclass(frozen=True)
class RuleRow:
    """One enabled rule as stored: `fields` are `rule_from_fields` keyword arguments,
    JSON ones still encoded."""

    id: int
    fields: Mapping[str, Any]


def rule_of(row: KeywordRule) -> Rule:
    """The rule a row describes; raises `InvalidRule`."""
    return rule_from_fields(id=row.id, **{f: getattr(row, f) for f in _RULE_FIELDS})


async def load_rule_rows(session: AsyncSession) -> list[RuleRow]:
    """Every enabled rule in one query, as plain values (validated later, off the loop)."""
    rows = await session.execute(select(*_RULE_SELECT).where(KeywordRule.enabled.is_(True)))
    return [RuleRow(row[0], dict(zip(_RULE_FIELDS, row[1:], strict=True))) for row in rows]


CompiledRules = dict[int, tuple[Mapping[str, Any], Rule]]  # id → (stored fields, rule)


def compile_rule_rows(
    rows: Sequence[RuleRow], previous: CompiledRules | None = None
) -> CompiledRules:
    """Validate rows into rules, reusing `previous` ones whose stored fields are equal
    (an edit revalidates one rule, not 10,000; comparing the fields themselves, not
    `updated_at`, also catches a row changed by hand). A row that no longer validates
    is skipped and logged, not fatal."""
    previous = previous or {}
    compiled: CompiledRules = {}
    for row in rows:
        known = previous.get(row.id)
        if known is not None and known[0] == row.fields:
            compiled[row.id] = known
            continue
        try:
            fields = {
                key: json.loads(value) if key in _JSON_FIELDS and isinstance(value, str) else value
                for key, value in row.fields.items()
            }
            compiled[row.id] = (row.fields, rule_from_fields(id=row.id, **fields))
        except (InvalidRule, ValueError) as exc:  # ValueError: stored JSON unreadable
            log.warning("autoreply rule %s skipped: %s", row.id, exc)
    return compiled


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
    return [rule for _at, rule in compile_rule_rows(await load_rule_rows(session)).values()]


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
