"""Compile a segment AST to one SQL condition over `customers`.

Tags, profile dimensions, hobbies, custom fields and identities are sets of customer ids
(`Members`): each compiles to a correlated EXISTS, which is TRUE or FALSE and never NULL,
so NOT means "everyone else" as a marketer expects. The sets of a top-level AND become
one `customers.id IN (…)` (see `compile_segment`); SQLite's planner would otherwise walk
every customer probing each set (bench/segments.py measures it).
Tag names are resolved to ids first: an unknown tag is an error, not an empty segment.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    exists,
    false,
    func,
    intersect,
    literal_column,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.consent import ANY_SCOPE, suppressed_clause
from conversations.models import Customer, Identity
from tagging.dimensions import (
    AGE_BRACKETS,
    INTENT_LEVELS,
    normalise_age_bracket,
    normalise_gender,
    normalise_intent,
    normalise_region_value,
    parse_date,
    years_before,
)
from tagging.models import (
    CustomerFieldValue,
    CustomerHobby,
    CustomerProfile,
    CustomerTag,
    CustomField,
    Tag,
    TagGroup,
)
from tagging.regions import PROVINCES

from .ast import And, Cond, Node, Not, Or
from .errors import SegmentError

DEFAULT_TZ = ZoneInfo("Asia/Shanghai")
Condition = ColumnElement[bool]
P = CustomerProfile


@dataclass
class CompileContext:
    session: AsyncSession
    now: datetime
    tz: tzinfo = DEFAULT_TZ

    @property
    def today(self) -> date:
        return self.now.astimezone(self.tz).date()


@dataclass(frozen=True)
class Members:
    """The customers whose `column` (a customer id) has a row matching `where`."""

    column: Any
    where: Condition

    @property
    def condition(self) -> Condition:
        return exists().where(self.column == Customer.id, self.where)

    @property
    def ids(self) -> Select[Any]:
        return select(self.column).where(self.where)


Leaf = Condition | Members
FieldCompiler = Callable[[Cond, CompileContext], Awaitable[Leaf]]
_FIELDS: dict[str, tuple[FieldCompiler, tuple[str, ...], str, Any]] = {}

EQ = (":", "=")
CMP = (":", "=", ">", ">=", "<", "<=")


def _field(
    name: str, ops: tuple[str, ...], help_text: str, on: Any = None
) -> Callable[[FieldCompiler], FieldCompiler]:
    """Register a field; with `on` (a customer-id column) the compiler's result is a
    predicate on that column's table and becomes `Members(on, predicate)`."""

    def register(fn: FieldCompiler) -> FieldCompiler:
        _FIELDS[name] = (fn, ops, help_text, on)
        return fn

    return register


def field_help() -> dict[str, str]:
    """Field name → one-line description, for the console's builder and error messages."""
    return {name: entry[2] for name, entry in sorted(_FIELDS.items())}


def customers_matching(condition: Condition, *columns: Any) -> Select[Any]:
    """SELECT columns (default: customer id) of live customers matching a compiled condition."""
    cols = columns or (Customer.id,)
    return select(*cols).select_from(Customer).where(Customer.merged_into_id.is_(None), condition)


def _as_condition(leaf: Leaf) -> Condition:
    return leaf.condition if isinstance(leaf, Members) else leaf


async def compile_segment(node: Node, ctx: CompileContext) -> Condition:
    """The SQL condition for a segment (use with `customers_matching`).

    The id sets of a top-level AND are combined so that no database walks every customer:
    on SQLite as INTERSECT … ORDER BY 1, which runs as a merge of the sets, each read in
    customer-id order straight from its (key, customer_id) index; on PostgreSQL the first
    set drives and the others stay semi-joins, which its planner orders by statistics.
    """
    parts = list(node.args) if isinstance(node, And) else [node]
    compiled = [await _compile(part, ctx) for part in parts]
    members = [leaf for leaf in compiled if isinstance(leaf, Members)]
    rest = [_as_condition(leaf) for leaf in compiled if not isinstance(leaf, Members)]
    if not members:
        return and_(*rest)
    if len(members) > 1 and ctx.session.get_bind().dialect.name == "sqlite":
        merged = intersect(*[m.ids for m in members]).order_by(literal_column("1"))
        return and_(Customer.id.in_(merged), *rest)
    first, *others = members
    return and_(Customer.id.in_(first.ids), *[m.condition for m in others], *rest)


async def _compile(node: Node, ctx: CompileContext) -> Leaf:
    if isinstance(node, And):
        return and_(*[_as_condition(await _compile(arg, ctx)) for arg in node.args])
    if isinstance(node, Or):
        return or_(*[_as_condition(await _compile(arg, ctx)) for arg in node.args])
    if isinstance(node, Not):
        return not_(_as_condition(await _compile(node.arg, ctx)))
    return await _compile_cond(node, ctx)


async def _compile_cond(cond: Cond, ctx: CompileContext) -> Leaf:
    key = "field" if cond.field.startswith("field.") else cond.field
    entry = _FIELDS.get(key)
    if entry is None:
        known = ", ".join(sorted(_FIELDS))
        raise SegmentError(f"unknown field {cond.field!r} (known: {known})", position=cond.position)
    fn, ops, _, on = entry
    if cond.op == "!=":
        if not (set(ops) & set(EQ)):
            raise SegmentError(f"{cond.field} does not take '!='", position=cond.position)
        positive = await _compile_cond(Cond(cond.field, ":", cond.value, cond.position), ctx)
        return not_(_as_condition(positive))
    if cond.op not in ops:
        allowed = " ".join(ops)
        raise SegmentError(
            f"{cond.field} takes the operators {allowed}, not {cond.op!r}", position=cond.position
        )
    try:
        result = await fn(cond, ctx)
    except ValueError as exc:
        if isinstance(exc, SegmentError):
            raise
        raise SegmentError(f"{cond.field}: {exc}", position=cond.position) from exc
    if on is not None and not isinstance(result, Members):
        return Members(on, result)
    return result


def _eq(column: Any, value: Any) -> Condition:
    return column == value  # type: ignore[no-any-return]  # Any column: a bool expression


def _compare(column: Any, op: str, value: Any) -> Condition:
    ops: dict[str, Callable[[Any, Any], Condition]] = {
        ":": lambda c, v: c == v,
        "=": lambda c, v: c == v,
        ">": lambda c, v: c > v,
        ">=": lambda c, v: c >= v,
        "<": lambda c, v: c < v,
        "<=": lambda c, v: c <= v,
    }
    return ops[op](column, value)


def _guarded(column: Any, condition: Condition) -> Condition:
    """For a nullable column of `customers` itself (not inside an EXISTS): FALSE rather
    than NULL when the column is empty, so that NOT includes those customers."""
    return and_(column.is_not(None), condition)


def _int(value: str, low: int | None = None, high: int | None = None) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a whole number") from None
    if (low is not None and number < low) or (high is not None and number > high):
        raise ValueError(f"{number} is outside {low}..{high}")
    return number


# ---------------------------------------------------------------- tags


@_field("tag", EQ, 'has a tag: tag:"意向/询价"; any tag of a group: tag:"意向/*"')
async def _tag(cond: Cond, ctx: CompileContext) -> Leaf:
    group, sep, name = cond.value.partition("/")
    if not sep or not group or not name:
        raise SegmentError(
            f"tag {cond.value!r} must be written as group/name, e.g. 意向/询价",
            position=cond.position,
        )
    query = select(Tag.id).join(TagGroup, TagGroup.id == Tag.group_id).where(TagGroup.name == group)
    if name != "*":
        query = query.where(Tag.name == name)
    ids = list(await ctx.session.scalars(query))
    if not ids:
        raise SegmentError(f"unknown tag {cond.value!r}", position=cond.position)
    tag_match = CustomerTag.tag_id == ids[0] if len(ids) == 1 else CustomerTag.tag_id.in_(ids)
    return Members(CustomerTag.customer_id, tag_match)


# ---------------------------------------------------------------- profile dimensions


@_field("region", EQ, "province or city: region:广东, region:深圳", on=P.customer_id)
async def _region(cond: Cond, ctx: CompileContext) -> Condition:
    value = normalise_region_value(cond.value)
    # a province name is matched on the province alone (municipalities store themselves
    # as their own city): one index, read in customer order, no OR to merge and sort
    return _eq(P.province, value) if value in PROVINCES else _eq(P.city, value)


@_field("province", EQ, "province: province:广东", on=P.customer_id)
async def _province(cond: Cond, ctx: CompileContext) -> Condition:
    return _eq(P.province, normalise_region_value(cond.value))


@_field("city", EQ, "city: city:深圳", on=P.customer_id)
async def _city(cond: Cond, ctx: CompileContext) -> Condition:
    return _eq(P.city, normalise_region_value(cond.value))


@_field("gender", EQ, "gender:男 / gender:女", on=P.customer_id)
async def _gender(cond: Cond, ctx: CompileContext) -> Condition:
    return _eq(P.gender, normalise_gender(cond.value))


@_field(
    "age", CMP, f"age bracket age:25-34 ({', '.join(AGE_BRACKETS)}) or age>=30", on=P.customer_id
)
async def _age(cond: Cond, ctx: CompileContext) -> Condition:
    if cond.op in EQ and not cond.value.isdigit():
        return _eq(P.age_bracket, normalise_age_bracket(cond.value))
    age = _int(cond.value, 0, 150)
    today = ctx.today
    born = P.birth_date
    # age >= n  ⇔  born on or before today n years ago
    if cond.op in EQ:
        return and_(
            _compare(born, "<=", years_before(today, age)),
            _compare(born, ">", years_before(today, age + 1)),
        )
    if cond.op == ">=":
        return _compare(born, "<=", years_before(today, age))
    if cond.op == ">":
        return _compare(born, "<=", years_before(today, age + 1))
    if cond.op == "<":
        return _compare(born, ">", years_before(today, age))
    return _compare(born, ">", years_before(today, age + 1))


@_field("occupation", EQ, "occupation:教师", on=P.customer_id)
async def _occupation(cond: Cond, ctx: CompileContext) -> Condition:
    return _eq(P.occupation, cond.value.strip())


@_field("hobby", EQ, "hobby:钓鱼")
async def _hobby(cond: Cond, ctx: CompileContext) -> Leaf:
    return Members(CustomerHobby.customer_id, CustomerHobby.hobby == cond.value.strip())


@_field(
    "intent",
    CMP,
    "intent level: intent:高, intent>=medium (none < low < medium < high)",
    on=P.customer_id,
)
async def _intent(cond: Cond, ctx: CompileContext) -> Condition:
    level = INTENT_LEVELS.index(normalise_intent(cond.value))
    chosen = {
        ":": [level],
        "=": [level],
        ">": range(level + 1, len(INTENT_LEVELS)),
        ">=": range(level, len(INTENT_LEVELS)),
        "<": range(0, level),
        "<=": range(0, level + 1),
    }[cond.op]
    levels = [INTENT_LEVELS[i] for i in chosen]
    return P.intent_level.in_(levels) if levels else false()


_DAYS = re.compile(r"^(\d{1,5})d$")


@_field(
    "birthday",
    EQ,
    "birthday within the next N days: birthday:7d; on a day: birthday:05-20",
    on=P.customer_id,
)
async def _birthday(cond: Cond, ctx: CompileContext) -> Condition:
    match = _DAYS.match(cond.value)
    if match:
        days = _int(match.group(1), 0, 366)
        return birthday_within(ctx.today, days)
    day = re.match(r"^(\d{1,2})-(\d{1,2})$", cond.value)
    if not day:
        raise ValueError("write birthday:7d (next 7 days) or birthday:05-20")
    return _eq(P.birthday_mmdd, int(day.group(1)) * 100 + int(day.group(2)))


def birthday_within(today: date, days: int) -> Condition:
    """Birthdays from today through today+days, across the new year when needed."""
    start = today.month * 100 + today.day
    end_day = today + timedelta(days=days)
    end = end_day.month * 100 + end_day.day
    if days >= 365:
        return P.birthday_mmdd.is_not(None)
    if end >= start and end_day.year == today.year:
        return and_(P.birthday_mmdd.is_not(None), P.birthday_mmdd.between(start, end))
    return and_(P.birthday_mmdd.is_not(None), or_(P.birthday_mmdd >= start, P.birthday_mmdd <= end))


# ---------------------------------------------------------------- value


def _score_field(column: Any, letter: str) -> FieldCompiler:
    async def compile_score(cond: Cond, ctx: CompileContext) -> Condition:
        return _compare(column, cond.op, _int(cond.value, 1, 5))

    _field(letter, CMP, f"RFM {letter.upper()} score 1..5: {letter}>=4", on=P.customer_id)(
        compile_score
    )
    return compile_score


_score_field(P.rfm_r, "r")
_score_field(P.rfm_f, "f")
_score_field(P.rfm_m, "m")


@_field("rfm", EQ, "all three RFM scores: rfm:555 (use * for any: rfm:5*5)", on=P.customer_id)
async def _rfm(cond: Cond, ctx: CompileContext) -> Condition:
    if not re.match(r"^[1-5*]{3}$", cond.value):
        raise ValueError("write three scores 1-5 or *, e.g. rfm:555 or rfm:5*5")
    parts = [
        _eq(column, int(ch))
        for column, ch in zip((P.rfm_r, P.rfm_f, P.rfm_m), cond.value, strict=True)
        if ch != "*"
    ]
    return and_(*parts) if parts else true()


@_field("abc", EQ, "value class: abc:A", on=P.customer_id)
async def _abc(cond: Cond, ctx: CompileContext) -> Condition:
    value = cond.value.strip().upper()
    if value not in ("A", "B", "C"):
        raise ValueError("ABC class must be A, B or C")
    return _eq(P.abc_class, value)


# ---------------------------------------------------------------- time


def _when(cond: Cond, column: Any, ctx: CompileContext) -> Condition:
    """`>30d` = more than 30 days ago; `>=2026-01-01` = on or after that (local) day."""
    match = _DAYS.match(cond.value)
    if match:
        cutoff = ctx.now - timedelta(days=_int(match.group(1), 0, 36500))
        # an age: bigger means longer ago, so the comparison flips on the timestamp
        flipped = {">": "<", ">=": "<=", "<": ">", "<=": ">="}
        if cond.op in EQ:
            raise ValueError("use < or > with a number of days, e.g. <7d")
        return _guarded(column, _compare(column, flipped[cond.op], cutoff))
    day = parse_date(cond.value)
    start = datetime.combine(day, time(), ctx.tz)
    end = start + timedelta(days=1)
    if cond.op in EQ:
        return _guarded(column, and_(column >= start, column < end))
    bound = {">": end, ">=": start, "<": start, "<=": end}[cond.op]
    op = {">": ">=", ">=": ">=", "<": "<", "<=": "<"}[cond.op]
    return _guarded(column, _compare(column, op, bound))


@_field(
    "last_contact",
    CMP,
    "last message: last_contact<7d (within 7 days), >30d (longer ago), :never, >=2026-01-01",
)
async def _last_contact(cond: Cond, ctx: CompileContext) -> Condition:
    if cond.op in EQ and cond.value == "never":
        return Customer.last_contact_at.is_(None)
    return _when(cond, Customer.last_contact_at, ctx)


@_field("created", CMP, "customer since: created<30d (new), created>=2026-01-01")
async def _created(cond: Cond, ctx: CompileContext) -> Condition:
    return _when(cond, Customer.created_at, ctx)


# ---------------------------------------------------------------- channels and consent


def _kind_matches(column: Any, value: str) -> Condition:
    value = value.strip()
    if not re.match(r"^[a-z0-9_]+(\.[a-z0-9_]+)?$", value):
        raise ValueError(f"{value!r} is not a channel kind such as sms, email, wecom.kf")
    return or_(column == value, column.like(f"{value}.%"))


@_field("reachable", EQ, "has an identity on a channel: reachable:sms, reachable:wecom")
async def _reachable(cond: Cond, ctx: CompileContext) -> Leaf:
    return Members(Identity.customer_id, _kind_matches(Identity.channel_kind, cond.value))


@_field("channel", EQ, "first-contact channel: channel:wecom")
async def _channel(cond: Cond, ctx: CompileContext) -> Condition:
    return and_(
        Customer.first_channel.is_not(None), _kind_matches(Customer.first_channel, cond.value)
    )


@_field("optout", EQ, 'on the do-not-contact list: optout:sms, optout:email, optout:"sms/【签名】"')
async def _optout(cond: Cond, ctx: CompileContext) -> Condition:
    channel, _, scope = cond.value.partition("/")
    scope = scope or ANY_SCOPE
    if channel == "sms":
        return and_(
            Customer.phone.is_not(None),
            suppressed_clause("sms", cast("ColumnElement[str]", Customer.phone), scope),
        )
    if channel == "email":
        return and_(
            Customer.email.is_not(None),
            suppressed_clause("email", func.lower(Customer.email), scope),
        )
    if channel == "wecom":
        return exists().where(
            Identity.customer_id == Customer.id,
            _kind_matches(Identity.channel_kind, "wecom"),
            suppressed_clause("wecom", cast("ColumnElement[str]", Identity.external_id), scope),
        )
    raise ValueError("optout takes sms, email or wecom (optionally /scope)")


@_field("owner", EQ, "follow-up salesperson (跟进人) by staff id: owner:12, owner:none")
async def _owner(cond: Cond, ctx: CompileContext) -> Condition:
    if cond.value == "none":
        return Customer.owner_id.is_(None)
    return _guarded(Customer.owner_id, Customer.owner_id == _int(cond.value, 1))


# ---------------------------------------------------------------- custom fields


@_field("field", CMP, "a custom field: field.budget>=10000, field.industry:制造")
async def _custom(cond: Cond, ctx: CompileContext) -> Leaf:
    key = cond.field.removeprefix("field.")
    found = await ctx.session.scalar(select(CustomField).where(CustomField.key == key))
    if found is None:
        raise SegmentError(f"unknown custom field {key!r}", position=cond.position)
    value_column: Any
    value: Any
    if found.kind == "number":
        try:
            value = float(cond.value)
        except ValueError:
            raise ValueError(f"{cond.value!r} is not a number") from None
        value_column = CustomerFieldValue.value_number
    elif found.kind == "date":
        value, value_column = parse_date(cond.value), CustomerFieldValue.value_date
    else:
        if cond.op not in EQ:
            raise ValueError(f"a {found.kind} field takes ':' only")
        if found.kind == "choice" and cond.value not in found.choices:
            raise ValueError(f"{cond.value!r} is not one of {found.choices}")
        value, value_column = cond.value, CustomerFieldValue.value_text
    return Members(
        CustomerFieldValue.customer_id,
        and_(CustomerFieldValue.field_id == found.id, _compare(value_column, cond.op, value)),
    )
