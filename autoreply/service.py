"""What the console calls: rule, FAQ, term and account-settings editing, FAQ
import/export, "try a message" and hit counts. Every edit bumps the version counter in
the same transaction, so every process's engine rebuilds (cache.py)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfoNotFoundError

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.actions import audit
from conversations.db import utcnow

from .cache import EngineCache
from .engine import Decision, Facts
from .faq_transfer import FaqRow
from .hours import BusinessHours
from .models import AccountReplySettings, FaqEntry, FaqTerm, KeywordRule
from .rules import InvalidRule, rule_from_fields
from .store import ACCOUNTS, FAQ, RULES, bump_versions

RULE_FIELDS = (
    "name",
    "match",
    "keywords",
    "pattern",
    "action",
    "replies",
    "choice",
    "priority",
    "channel_kinds",
    "account_ids",
    "tag_ids",
    "time_window",
    "enabled",
)


class NotFound(LookupError):
    pass


def _validated_rule(data: Mapping[str, Any], base: KeywordRule | None = None) -> dict[str, Any]:
    merged: dict[str, Any] = {
        "name": "",
        "match": "contains",
        "keywords": [],
        "pattern": None,
        "action": "reply",
        "replies": [],
        "choice": "random",
        "priority": 100,
        "channel_kinds": [],
        "account_ids": [],
        "tag_ids": [],
        "time_window": None,
        "enabled": True,
    }
    if base is not None:
        merged.update({f: getattr(base, f) for f in RULE_FIELDS})
    merged.update({k: v for k, v in data.items() if k in RULE_FIELDS})
    try:
        merged["priority"] = int(merged["priority"])
    except (TypeError, ValueError):
        raise InvalidRule(["priority must be a whole number"]) from None
    rule = rule_from_fields(
        id=0, **{k: v for k, v in merged.items() if k != "enabled"}
    )  # raises InvalidRule
    merged["keywords"] = [str(k).strip() for k in merged["keywords"] if str(k).strip()]
    merged["replies"] = [v.to_json() for v in rule.replies]
    merged["enabled"] = bool(merged["enabled"])
    return merged


async def list_rules(session: AsyncSession) -> list[KeywordRule]:
    return list(
        await session.scalars(select(KeywordRule).order_by(KeywordRule.priority, KeywordRule.id))
    )


async def create_rule(
    session: AsyncSession, data: Mapping[str, Any], *, actor_id: int | None
) -> KeywordRule:
    """Validate and store a rule; raises `InvalidRule` with the problems."""
    row = KeywordRule(**_validated_rule(data))
    session.add(row)
    await session.flush()
    await audit(
        session,
        "autoreply.rule.create",
        actor_id=actor_id,
        target_type="autoreply_rule",
        target_id=row.id,
    )
    await bump_versions(session, [RULES])
    return row


async def update_rule(
    session: AsyncSession, rule_id: int, data: Mapping[str, Any], *, actor_id: int | None
) -> KeywordRule:
    row = await session.get(KeywordRule, rule_id)
    if row is None:
        raise NotFound(f"rule {rule_id}")
    for key, value in _validated_rule(data, row).items():
        setattr(row, key, value)
    row.updated_at = utcnow()
    await audit(
        session,
        "autoreply.rule.update",
        actor_id=actor_id,
        target_type="autoreply_rule",
        target_id=rule_id,
        detail={"fields": sorted(data)},
    )
    await bump_versions(session, [RULES])
    return row


async def delete_rule(session: AsyncSession, rule_id: int, *, actor_id: int | None) -> None:
    row = await session.get(KeywordRule, rule_id)
    if row is None:
        raise NotFound(f"rule {rule_id}")
    await session.delete(row)
    await audit(
        session,
        "autoreply.rule.delete",
        actor_id=actor_id,
        target_type="autoreply_rule",
        target_id=rule_id,
        detail={"name": row.name, "keywords": row.keywords},
    )
    await bump_versions(session, [RULES])


@dataclass(frozen=True)
class HitCount:
    kind: str  # rule | faq
    id: int
    name: str
    hits: int
    last_hit_at: datetime | None


async def hit_counts(session: AsyncSession) -> list[HitCount]:
    """Rules and FAQ entries by hits, most used first."""
    counts = [
        HitCount(
            "rule",
            r.id,
            r.name or "、".join(map(str, r.keywords)) or str(r.pattern),
            r.hits,
            r.last_hit_at,
        )
        for r in await session.scalars(select(KeywordRule))
    ]
    counts += [
        HitCount("faq", f.id, f.question, f.hits, f.last_hit_at)
        for f in await session.scalars(select(FaqEntry))
    ]
    return sorted(counts, key=lambda c: (-c.hits, c.kind, c.id))


# ---------------------------------------------------------------- FAQ


async def list_faq(session: AsyncSession) -> list[FaqEntry]:
    return list(await session.scalars(select(FaqEntry).order_by(FaqEntry.category, FaqEntry.id)))


def _faq_values(row: FaqRow) -> dict[str, Any]:
    problems = [
        f"{name} is required"
        for name, value in (("slug", row.slug), ("question", row.question), ("answer", row.answer))
        if not value.strip()
    ]
    if problems:
        raise InvalidRule(problems)
    return {
        "slug": row.slug.strip(),
        "question": row.question.strip(),
        "alternatives": [a.strip() for a in row.alternatives if a.strip()],
        "answer": row.answer,
        "category": row.category,
        "enabled": row.enabled,
        "channels": dict(row.channels),
    }


async def save_faq(session: AsyncSession, row: FaqRow, *, actor_id: int | None) -> FaqEntry:
    """Create or update (by slug) one FAQ entry."""
    values = _faq_values(row)
    entry = await session.scalar(select(FaqEntry).where(FaqEntry.slug == values["slug"]))
    if entry is None:
        entry = FaqEntry(**values)
        session.add(entry)
    else:
        for key, value in values.items():
            setattr(entry, key, value)
        entry.updated_at = utcnow()
    await session.flush()
    await audit(
        session,
        "autoreply.faq.save",
        actor_id=actor_id,
        target_type="autoreply_faq",
        target_id=entry.id,
    )
    await bump_versions(session, [FAQ])
    return entry


async def delete_faq(session: AsyncSession, entry_id: int, *, actor_id: int | None) -> None:
    entry = await session.get(FaqEntry, entry_id)
    if entry is None:
        raise NotFound(f"faq {entry_id}")
    await session.delete(entry)
    await audit(
        session,
        "autoreply.faq.delete",
        actor_id=actor_id,
        target_type="autoreply_faq",
        target_id=entry_id,
        detail={"slug": entry.slug},
    )
    await bump_versions(session, [FAQ])


@dataclass(frozen=True)
class ImportResult:
    created: int
    updated: int
    removed: int


async def import_faq(
    session: AsyncSession, rows: Sequence[FaqRow], *, actor_id: int | None, replace: bool = False
) -> ImportResult:
    """Upsert entries by slug; with `replace`, entries missing from the file are deleted."""
    existing = {e.slug: e for e in await session.scalars(select(FaqEntry))}
    created = updated = 0
    for row in rows:
        values = _faq_values(row)
        entry = existing.get(values["slug"])
        if entry is None:
            session.add(FaqEntry(**values))
            created += 1
        else:
            for key, value in values.items():
                setattr(entry, key, value)
            entry.updated_at = utcnow()
            updated += 1
    removed = 0
    if replace:
        keep = {r.slug.strip() for r in rows}
        gone = [e.id for slug, e in existing.items() if slug not in keep]
        if gone:
            await session.execute(delete(FaqEntry).where(FaqEntry.id.in_(gone)))
        removed = len(gone)
    await session.flush()
    await audit(
        session,
        "autoreply.faq.import",
        actor_id=actor_id,
        target_type="autoreply_faq",
        detail={"created": created, "updated": updated, "removed": removed},
    )
    await bump_versions(session, [FAQ])
    return ImportResult(created, updated, removed)


async def export_faq(session: AsyncSession) -> list[FaqRow]:
    return [
        FaqRow(
            slug=e.slug,
            question=e.question,
            answer=e.answer,
            alternatives=tuple(str(a) for a in e.alternatives),
            category=e.category,
            enabled=e.enabled,
            channels=dict(e.channels),
        )
        for e in await list_faq(session)
    ]


async def list_terms(session: AsyncSession) -> list[FaqTerm]:
    return list(await session.scalars(select(FaqTerm).order_by(FaqTerm.term)))


async def save_term(
    session: AsyncSession, term: str, synonyms: Iterable[str], *, actor_id: int | None
) -> FaqTerm:
    """A product name for the tokenizer and the words customers use for it."""
    term = term.strip()
    if not term:
        raise InvalidRule(["term is required"])
    words = [s.strip() for s in synonyms if s.strip() and s.strip() != term]
    row = await session.scalar(select(FaqTerm).where(FaqTerm.term == term))
    if row is None:
        row = FaqTerm(term=term, synonyms=words)
        session.add(row)
    else:
        row.synonyms = words
    await session.flush()
    await audit(
        session,
        "autoreply.term.save",
        actor_id=actor_id,
        target_type="autoreply_term",
        target_id=row.id,
    )
    await bump_versions(session, [FAQ])
    return row


async def delete_term(session: AsyncSession, term_id: int, *, actor_id: int | None) -> None:
    row = await session.get(FaqTerm, term_id)
    if row is None:
        raise NotFound(f"term {term_id}")
    await session.delete(row)
    await audit(
        session,
        "autoreply.term.delete",
        actor_id=actor_id,
        target_type="autoreply_term",
        target_id=term_id,
    )
    await bump_versions(session, [FAQ])


# ---------------------------------------------------------------- accounts


async def get_account_settings(session: AsyncSession, account_id: int) -> AccountReplySettings:
    """The account's lifecycle settings (defaults when never saved; not added)."""
    row = await session.get(AccountReplySettings, account_id)
    return row or AccountReplySettings(
        account_id=account_id,
        timezone="Asia/Shanghai",
        weekly_hours={},
        holidays=[],
        workdays=[],
        welcome_text="",
        away_text="",
        handoff_text="",
    )


ACCOUNT_FIELDS = (
    "timezone",
    "weekly_hours",
    "holidays",
    "workdays",
    "welcome_text",
    "away_text",
    "handoff_text",
)


async def save_account_settings(
    session: AsyncSession, account_id: int, data: Mapping[str, Any], *, actor_id: int | None
) -> AccountReplySettings:
    """Validate hours (timezone, spans, dates) and store them; raises `InvalidRule`."""
    current = await session.get(AccountReplySettings, account_id)
    row = current or await get_account_settings(session, account_id)
    values = {f: data.get(f, getattr(row, f)) for f in ACCOUNT_FIELDS}
    try:
        BusinessHours.from_json(
            values["timezone"], values["weekly_hours"], values["holidays"], values["workdays"]
        )
    except (ValueError, TypeError, ZoneInfoNotFoundError) as exc:
        raise InvalidRule([f"bad business hours: {exc}"]) from None
    for key, value in values.items():
        setattr(row, key, value)
    if current is None:
        session.add(row)
    row.updated_at = utcnow()
    await session.flush()
    await audit(
        session,
        "autoreply.account.save",
        actor_id=actor_id,
        target_type="channel_account",
        target_id=account_id,
    )
    await bump_versions(session, [ACCOUNTS])
    return row


# ---------------------------------------------------------------- try a message


async def explain(
    session: AsyncSession,
    cache: EngineCache,
    text: str,
    *,
    channel_kind: str,
    account_id: int,
    tag_ids: Iterable[int] = (),
    at: datetime | None = None,
) -> dict[str, Any]:
    """Which rule or FAQ entry would answer `text` here and why, as JSON for the console."""
    snapshot = await cache.current(session)
    facts = Facts(channel_kind, account_id, at or utcnow(), frozenset(tag_ids))
    decision = snapshot.engine.decide(text, facts, explain=True)
    profile = snapshot.profile(account_id)
    return explanation_json(decision, business_hours_open=profile.hours.is_open(facts.at))


def explanation_json(decision: Decision, *, business_hours_open: bool) -> dict[str, Any]:
    reply = None
    if decision.rule is not None and decision.rule.replies:
        reply = decision.rule.replies[0].text
    elif decision.outcome.value == "faq" and decision.faq is not None:
        reply = decision.faq.entry.reply.text
    return {
        "outcome": decision.outcome.value,
        "reason": decision.reason,
        "rule": None
        if decision.rule is None
        else {
            "id": decision.rule.id,
            "name": decision.rule.name,
            "priority": decision.rule.priority,
        },
        "matched": list(decision.matched),
        "reply": reply,
        "business_hours_open": business_hours_open,
        "candidates": [
            {
                "rule_id": n.rule_id,
                "name": n.rule_name,
                "matched": list(n.matched),
                "in_scope": n.refused is None,
                "refused": n.refused,
            }
            for n in decision.scope
        ],
        "faq": [
            {
                "id": m.entry.id,
                "slug": m.entry.slug,
                "question": m.entry.question,
                "phrasing": m.phrasing,
                "score": m.score,
                "confidence": m.confidence,
                "matched_terms": list(m.matched_terms),
            }
            for m in decision.faq_candidates
        ],
    }
