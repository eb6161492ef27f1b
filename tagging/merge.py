"""One customer per person (一客一档): duplicate suggestions and an audited merge.

The merge moves every row that points at the losing customer — identities,
conversations, tags, tag history, orders, profile values and any other package's rows —
in the caller's transaction. A row that would collide with one the winner already has
(the same tag twice, the same custom field) stays on the loser, which is kept and marked
`merged_into_id`, so nothing is ever deleted; the audit entry lists what moved and what
stayed so the merge can be reviewed or undone.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Column,
    Table,
    UniqueConstraint,
    and_,
    exists,
    not_,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.actions import audit
from conversations.db import Base, utcnow
from conversations.models import Customer

from .models import CustomerProfile
from .phones import normalise_phone

NAME_SIMILARITY = 0.8
# profile columns a merge may fill on the winner from the loser; value scores are not
# copied (the next recompute scores the merged history)
_PROFILE_FILL = (
    "province",
    "city",
    "region_source",
    "address",
    "gender",
    "birth_date",
    "birthday_mmdd",
    "age_bracket",
    "occupation",
    "intent_level",
)
_CUSTOMER_FILL = ("phone", "email", "wecom_unionid", "owner_id", "first_channel")


class MergeError(ValueError):
    """A merge that must not happen (same customer, already merged, unknown id)."""


@dataclass(frozen=True)
class DuplicateSuggestion:
    customer_id: int
    display_name: str
    reasons: tuple[str, ...]  # "phone", "email", "unionid", "name"
    score: float  # 1.0 for a shared phone/email/unionid, name similarity otherwise


def name_similarity(a: str, b: str) -> float:
    a, b = a.strip().casefold(), b.strip().casefold()
    if not a or not b:
        return 0.0
    return difflib.SequenceMatcher(None, a, b).ratio()


async def find_duplicates(
    session: AsyncSession,
    *,
    name: str = "",
    phone: str | None = None,
    email: str | None = None,
    unionid: str | None = None,
    exclude_id: int | None = None,
    limit: int = 10,
) -> list[DuplicateSuggestion]:
    """Live customers who are probably this person: the same phone, email or WeCom
    unionid, or a similar name ("find similar customers when creating")."""
    found: dict[int, tuple[str, set[str], float]] = {}
    e164 = normalise_phone(phone) if phone else None
    for reason, column, value in (
        ("phone", Customer.phone, e164),
        ("email", Customer.email, email.strip().lower() if email else None),
        ("unionid", Customer.wecom_unionid, unionid),
    ):
        if not value:
            continue
        rows = await session.execute(
            select(Customer.id, Customer.display_name)
            .where(column == value, Customer.merged_into_id.is_(None))
            .limit(limit)
        )
        for cid, display in rows:
            entry = found.setdefault(cid, (display, set(), 1.0))
            entry[1].add(reason)
    name = name.strip()
    if len(name) >= 2:
        # candidates share the first two characters (an indexed-prefix scan on names
        # would need a trigram index; the prefix keeps this cheap and catches 张三/张三丰)
        rows = await session.execute(
            select(Customer.id, Customer.display_name)
            .where(Customer.display_name.like(f"{_escape_like(name[:2])}%", escape="\\"))
            .where(Customer.merged_into_id.is_(None))
            .limit(200)
        )
        for cid, display in rows:
            similarity = name_similarity(name, display)
            if similarity >= NAME_SIMILARITY:
                entry = found.setdefault(cid, (display, set(), similarity))
                entry[1].add("name")
    if exclude_id is not None:
        found.pop(exclude_id, None)
    suggestions = [
        DuplicateSuggestion(cid, display, tuple(sorted(reasons)), score)
        for cid, (display, reasons, score) in found.items()
    ]
    suggestions.sort(key=lambda s: (-s.score, -len(s.reasons), s.customer_id))
    return suggestions[:limit]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass
class MergeReport:
    winner_id: int
    loser_id: int
    moved: dict[str, list[Any]] = field(default_factory=dict)  # table → keys of moved rows
    kept_on_loser: dict[str, list[Any]] = field(default_factory=dict)  # collisions
    filled: dict[str, Any] = field(default_factory=dict)  # winner fields filled from the loser

    def as_detail(self) -> dict[str, Any]:
        return {
            "winner_id": self.winner_id,
            "loser_id": self.loser_id,
            "moved": self.moved,
            "kept_on_loser": self.kept_on_loser,
            "filled": self.filled,
        }


# customer-id columns kept without a foreign key (append-only logs written in bulk)
UNCONSTRAINED_REFERENCES = (("customer_tags", "customer_id"), ("tag_events", "customer_id"))


def _customer_references() -> list[tuple[Table, Column[Any]]]:
    """Every (table, column) that names a customer: foreign keys to customers.id from all
    packages, plus the unconstrained ones listed above."""
    refs = []
    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            if column.name == "merged_into_id" and table.name == "customers":
                continue
            if any(fk.column.table.name == "customers" for fk in column.foreign_keys) or (
                (table.name, column.name) in UNCONSTRAINED_REFERENCES
            ):
                refs.append((table, column))
    return refs


def _unique_sets(table: Table, column: Column[Any]) -> list[list[Column[Any]]]:
    """Column sets that must stay unique and include `column` (primary key, unique
    constraints, unique indexes): moving a row must not collide on them."""
    sets: list[Sequence[Column[Any]]] = [list(table.primary_key.columns)]
    for constraint in table.constraints:
        if isinstance(constraint, UniqueConstraint):
            sets.append(list(constraint.columns))
    for index in table.indexes:
        if index.unique:
            sets.append([c for c in index.columns if isinstance(c, Column)])
    for col in table.columns:
        if col.unique:
            sets.append([col])
    return [list(cols) for cols in sets if column in cols]


def _json_key(value: Any) -> Any:
    return value if isinstance(value, (int, str, float)) or value is None else str(value)


async def _move_rows(
    session: AsyncSession, table: Table, column: Column[Any], winner: int, loser: int
) -> tuple[list[Any], list[Any]]:
    """Point the loser's rows at the winner except those that would collide."""
    collisions = []
    for unique in _unique_sets(table, column):
        twin = table.alias("twin")
        others = [twin.c[c.name] == table.c[c.name] for c in unique if c is not column]
        collisions.append(exists().where(twin.c[column.name] == winner, *others))
    collide = or_(*collisions) if collisions else None
    pk = list(table.primary_key.columns)
    keys_query = select(*pk).where(column == loser)
    moved_where = [column == loser]
    if collide is not None:
        moved_where.append(not_(collide))
    moved = [
        [_json_key(v) for v in row]
        for row in await session.execute(select(*pk).where(and_(*moved_where)))
    ]
    all_rows = [[_json_key(v) for v in row] for row in await session.execute(keys_query)]
    await session.execute(update(table).where(and_(*moved_where)).values({column.name: winner}))
    kept = [row for row in all_rows if row not in moved]

    def simplify(rows: list[list[Any]]) -> list[Any]:
        return [row[0] if len(row) == 1 else row for row in rows]

    return simplify(moved), simplify(kept)


async def merge_customers(
    session: AsyncSession,
    winner_id: int,
    loser_id: int,
    *,
    actor_id: int | None,
    reason: str = "",
) -> MergeReport:
    """Merge `loser_id` into `winner_id` in the caller's transaction, audited."""
    if winner_id == loser_id:
        raise MergeError("a customer cannot be merged into itself")
    winner = await session.get(Customer, winner_id, with_for_update=True)
    loser = await session.get(Customer, loser_id, with_for_update=True)
    if winner is None or loser is None:
        raise MergeError("unknown customer")
    if winner.merged_into_id is not None or loser.merged_into_id is not None:
        raise MergeError("one of the customers was already merged into another")
    report = MergeReport(winner_id, loser_id)
    await _fill_profile(session, winner_id, loser_id, report)
    for table, column in _customer_references():
        moved, kept = await _move_rows(session, table, column, winner_id, loser_id)
        if moved:
            report.moved[f"{table.name}.{column.name}"] = moved
        if kept:
            report.kept_on_loser[f"{table.name}.{column.name}"] = kept
    for name in _CUSTOMER_FILL:
        if getattr(winner, name) is None and getattr(loser, name) is not None:
            report.filled[f"customers.{name}"] = getattr(loser, name)
            setattr(winner, name, getattr(loser, name))
    if loser.last_contact_at and (
        winner.last_contact_at is None or loser.last_contact_at > winner.last_contact_at
    ):
        winner.last_contact_at = loser.last_contact_at
    # customers merged into the loser earlier now point at the winner (no chains)
    await session.execute(
        update(Customer).where(Customer.merged_into_id == loser_id).values(merged_into_id=winner_id)
    )
    loser.merged_into_id = winner_id
    loser.updated_at = winner.updated_at = utcnow()
    await audit(
        session,
        "customer.merge",
        actor_id=actor_id,
        target_type="customer",
        target_id=winner_id,
        detail={**report.as_detail(), "reason": reason},
    )
    await session.flush()
    return report


async def _fill_profile(
    session: AsyncSession, winner_id: int, loser_id: int, report: MergeReport
) -> None:
    """When both have a profile, the winner's empty dimensions take the loser's values
    (the loser's row stays as it was, for review)."""
    winner = await session.get(CustomerProfile, winner_id)
    loser = await session.get(CustomerProfile, loser_id)
    if winner is None or loser is None:
        return  # no profile on one side: the generic move carries the loser's row over
    for name in _PROFILE_FILL:
        if getattr(winner, name) is None and getattr(loser, name) is not None:
            value = getattr(loser, name)
            report.filled[f"customer_profiles.{name}"] = _json_key(value)
            setattr(winner, name, value)
    winner.updated_at = utcnow()
