"""Pipeline handlers that apply auto-tag rules to an incoming message or channel event.

Idempotent: a tag already on the customer is not added again (no second history row),
and a rule never puts back a tag that a person took off.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.handlers import EventContext, MessageContext
from conversations.models import Customer, Identity
from conversations.types import Direction, MessageKind, SenderType

from .models import Tag, TagEvent, TagGroup, TagRule
from .profiles import fill_region_from_phone
from .rules import TEXT_KINDS, match_channel, match_event, match_text, tokens_of
from .segments import parse
from .segments.compiler import CompileContext, compile_segment, customers_matching
from .tags import Why, bulk_tag_where, tag_customer

log = logging.getLogger(__name__)
PERSON_SOURCES = ("manual", "bulk")


@dataclass(frozen=True)
class _Rule:
    id: int
    name: str
    tag_id: int
    kind: str
    pattern: str
    config: dict[str, Any]
    group_id: int
    exclusive: bool


async def _enabled_rules(session: AsyncSession, kinds: tuple[str, ...]) -> list[_Rule]:
    rows = await session.execute(
        select(TagRule, Tag.group_id, TagGroup.exclusive)
        .join(Tag, Tag.id == TagRule.tag_id)
        .join(TagGroup, TagGroup.id == Tag.group_id)
        .where(TagRule.enabled.is_(True), TagRule.kind.in_(kinds), Tag.archived.is_(False))
        .order_by(TagRule.priority, TagRule.id)
    )
    return [
        _Rule(r.id, r.name, r.tag_id, r.kind, r.pattern, dict(r.config), group_id, exclusive)
        for r, group_id, exclusive in rows
    ]


async def _removed_by_a_person(session: AsyncSession, customer_id: int, tag_id: int) -> bool:
    found = await session.scalar(
        select(
            exists().where(
                TagEvent.customer_id == customer_id,
                TagEvent.tag_id == tag_id,
                TagEvent.action == "remove",
                TagEvent.source.in_(PERSON_SOURCES),
            )
        )
    )
    return bool(found)


async def _profile_matches(
    session: AsyncSession, pattern: str, customer_id: int, now: datetime
) -> bool:
    condition = await compile_segment(parse(pattern), CompileContext(session, now))
    query = customers_matching(condition).where(Customer.id == customer_id)
    return await session.scalar(query) is not None


async def _apply(
    session: AsyncSession,
    rules: list[_Rule],
    customer_id: int,
    evidence_of: dict[int, str],
    *,
    message_id: int | None,
) -> list[int]:
    """Tag for each matching rule in priority order; one tag per single-select group."""
    applied: list[int] = []
    taken_groups: set[int] = set()
    for rule in rules:
        evidence = evidence_of.get(rule.id)
        if evidence is None or (rule.exclusive and rule.group_id in taken_groups):
            continue
        if rule.exclusive:
            taken_groups.add(rule.group_id)
        if await _removed_by_a_person(session, customer_id, rule.tag_id):
            continue
        why = Why("rule", rule_id=rule.id, message_id=message_id, reason=f"{rule.name}: {evidence}")
        if await tag_customer(session, customer_id, rule.tag_id, why):
            await session.execute(
                update(TagRule).where(TagRule.id == rule.id).values(hits=TagRule.hits + 1)
            )
            applied.append(rule.id)
    return applied


_RULES_MEMO = "tagging.auto_tag.rules"


async def auto_tag(ctx: MessageContext) -> None:
    """Tag the customer from what they wrote, the channel they came through and their
    profile; each tag records this message as its cause. Also fills the region from the
    phone number's prefix when unknown."""
    msg = ctx.message
    if msg.direction != Direction.INBOUND.value or msg.sender_type != SenderType.CUSTOMER.value:
        return
    customer = ctx.customer
    rules = ctx.batch.get(_RULES_MEMO)
    if rules is None:  # once per pipeline batch, not per message
        rules = ctx.batch[_RULES_MEMO] = await _enabled_rules(
            ctx.session, (*TEXT_KINDS, "channel", "profile")
        )
    evidence: dict[int, str] = {}
    has_text = msg.kind == MessageKind.TEXT.value and bool(msg.text) and not msg.automated
    tokens = tokens_of(msg.text) if has_text and any(r.kind == "token" for r in rules) else None
    for rule in rules:
        found: str | None = None
        if rule.kind in TEXT_KINDS:
            found = match_text(rule.kind, rule.pattern, msg.text, tokens) if has_text else None
            found = f"matched {found!r}" if found is not None else None
        elif rule.kind == "channel":
            found = match_channel(rule.config, ctx.account.kind, customer.first_channel)
        elif await _profile_matches(ctx.session, rule.pattern, customer.id, ctx.now):
            found = f"profile {rule.pattern}"
        if found is not None:
            evidence[rule.id] = found
    applied = await _apply(ctx.session, rules, customer.id, evidence, message_id=msg.id)
    if await fill_region_from_phone(ctx.session, customer):
        ctx.notes.append("region from phone")
    if applied:
        ctx.notes.append(f"auto-tag rules={applied}")


async def auto_tag_event(ctx: EventContext) -> None:
    """Tag the customer a channel event is about (e.g. WeCom add_external_contact with the
    State of the contact-way QR code they scanned)."""
    event = ctx.event
    if not event.external_id:
        return
    customer_id = await ctx.session.scalar(
        select(Identity.customer_id).where(
            Identity.account_id == event.account_id, Identity.external_id == event.external_id
        )
    )
    if customer_id is None:
        log.debug("event %s: no identity for %s yet", event.id, event.external_id)
        return
    rules = await _enabled_rules(ctx.session, ("event",))
    evidence: dict[int, str] = {}
    for rule in rules:
        found = match_event(rule.config, ctx.account.kind, event.event_type, dict(event.payload))
        if found is not None:
            evidence[rule.id] = f"{found} (event {event.id})"
    await _apply(ctx.session, rules, customer_id, evidence, message_id=None)


async def apply_profile_rules(session: AsyncSession, now: datetime) -> int:
    """Scheduled: run every profile rule over the whole base, set-based; returns tags added."""
    added = 0
    for rule in await _enabled_rules(session, ("profile",)):
        condition = await compile_segment(parse(rule.pattern), CompileContext(session, now))
        not_removed = ~exists().where(
            TagEvent.customer_id == Customer.id,
            TagEvent.tag_id == rule.tag_id,
            TagEvent.action == "remove",
            TagEvent.source.in_(PERSON_SOURCES),
        )
        count = await bulk_tag_where(
            session,
            rule.tag_id,
            and_(condition, not_removed),
            Why("rule", rule_id=rule.id, reason=f"{rule.name}: profile {rule.pattern}"),
        )
        if count:
            await session.execute(
                update(TagRule).where(TagRule.id == rule.id).values(hits=TagRule.hits + count)
            )
        added += count
    return added
