"""Profile dimensions (客户画像): validation of raw values, writing them, region from the
phone number or the stated address, custom fields, age brackets and birthday reminders."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import and_, delete, exists, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.db import utcnow
from conversations.models import Customer
from conversations.notifications import notify_staff

from .dimensions import (
    AGE_BRACKETS,
    age_bracket_of,
    bracket_birth_range,
    mmdd,
    normalise_age_bracket,
    normalise_gender,
    normalise_intent,
    normalise_region_value,
    parse_birthday,
    parse_date,
)
from .models import CustomerFieldValue, CustomerHobby, CustomerProfile, CustomField
from .phones import region_of_phone
from .regions import region_from_text
from .segments.compiler import P, birthday_within

FIELD_KINDS = ("text", "number", "date", "choice")
PROFILE_KEYS = (
    "address",
    "province",
    "city",
    "gender",
    "birthday",
    "age_bracket",
    "occupation",
    "hobbies",
    "intent",
)


@dataclass(frozen=True)
class FieldError:
    field: str
    reason: str


@dataclass
class CleanProfile:
    """Validated profile values; only the keys present are written."""

    columns: dict[str, Any] = field(default_factory=dict)
    hobbies: list[str] | None = None
    custom: dict[int, tuple[str | None, float | None, date | None]] = field(default_factory=dict)


def clean_custom_value(
    custom: CustomField, raw: str
) -> tuple[str | None, float | None, date | None]:
    """(text, number, date) storage of one custom field value; ValueError when invalid."""
    text = raw.strip()
    if custom.kind == "number":
        try:
            return None, float(text.replace(",", "")), None
        except ValueError:
            raise ValueError(f"{raw!r} is not a number") from None
    if custom.kind == "date":
        return None, None, parse_date(text)
    if custom.kind == "choice" and text not in custom.choices:
        raise ValueError(f"{raw!r} is not one of {', '.join(map(str, custom.choices))}")
    if len(text) > 500:
        raise ValueError("longer than 500 characters")
    return text, None, None


def validate_profile(
    raw: Mapping[str, Any], custom_fields: Mapping[str, CustomField], today: date
) -> tuple[CleanProfile, list[FieldError]]:
    """Check raw values from a form or an import row. Empty values are skipped."""
    clean = CleanProfile()
    errors: list[FieldError] = []
    for key, value in raw.items():
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        try:
            _clean_one(key, value, custom_fields, today, clean)
        except ValueError as exc:
            errors.append(FieldError(key, str(exc)))
    return clean, errors


def _clean_one(
    key: str, value: Any, custom_fields: Mapping[str, CustomField], today: date, clean: CleanProfile
) -> None:
    cols = clean.columns
    if key == "address":
        cols["address"] = str(value).strip()[:300]
        region = region_from_text(str(value))
        if region is not None:
            cols.setdefault("province", region.province)
            if region.city:
                cols.setdefault("city", region.city)
            cols["region_source"] = "address"
    elif key in ("province", "city"):
        cols[key] = normalise_region_value(str(value))
        cols["region_source"] = "manual"
    elif key == "gender":
        cols["gender"] = normalise_gender(str(value))
    elif key == "birthday":
        birth = value if isinstance(value, date) else parse_birthday(str(value), today)
        cols["birth_date"] = birth
        cols["birthday_mmdd"] = mmdd(birth)
        cols["age_bracket"] = age_bracket_of(birth, today)
    elif key == "age_bracket":
        cols.setdefault("age_bracket", normalise_age_bracket(str(value)))
    elif key == "occupation":
        cols["occupation"] = str(value).strip()[:64]
    elif key == "intent":
        cols["intent_level"] = normalise_intent(str(value))
    elif key == "hobbies":
        items = value if isinstance(value, list) else str(value).replace("；", ";").split(";")
        hobbies = sorted({str(item).strip()[:32] for item in items if str(item).strip()})
        clean.hobbies = hobbies
    elif key in custom_fields:
        custom = custom_fields[key]
        clean.custom[custom.id] = clean_custom_value(custom, str(value))
    else:
        raise ValueError("unknown profile field")


async def custom_fields_by_key(session: AsyncSession) -> dict[str, CustomField]:
    rows = await session.scalars(select(CustomField).where(CustomField.active.is_(True)))
    return {row.key: row for row in rows}


async def define_field(
    session: AsyncSession, key: str, label: str, kind: str, choices: Sequence[str] = ()
) -> CustomField:
    """Define a custom profile field at run time (console)."""
    if kind not in FIELD_KINDS:
        raise ValueError(f"field kind must be one of {', '.join(FIELD_KINDS)}")
    if not key.isidentifier() or key in PROFILE_KEYS:
        raise ValueError(f"{key!r} cannot be a field key (letters, digits, _; not a built-in)")
    if kind == "choice" and not choices:
        raise ValueError("a choice field needs its choices")
    custom = CustomField(key=key, label=label, kind=kind, choices=list(choices))
    session.add(custom)
    await session.flush()
    return custom


async def ensure_profile(session: AsyncSession, customer_id: int) -> CustomerProfile:
    profile = await session.get(CustomerProfile, customer_id)
    if profile is None:
        profile = CustomerProfile(customer_id=customer_id, updated_at=utcnow())
        session.add(profile)
        await session.flush()
    return profile


async def apply_profile(session: AsyncSession, customer_id: int, clean: CleanProfile) -> None:
    """Write validated values: columns, the hobby set (replaced) and custom field values."""
    profile = await ensure_profile(session, customer_id)
    for column, value in clean.columns.items():
        setattr(profile, column, value)
    profile.updated_at = utcnow()
    if clean.hobbies is not None:
        await session.execute(delete(CustomerHobby).where(CustomerHobby.customer_id == customer_id))
        for hobby in clean.hobbies:
            session.add(CustomerHobby(customer_id=customer_id, hobby=hobby))
    for field_id, (text, number, day) in clean.custom.items():
        row = await session.get(CustomerFieldValue, (customer_id, field_id))
        if row is None:
            row = CustomerFieldValue(customer_id=customer_id, field_id=field_id)
            session.add(row)
        row.value_text, row.value_number, row.value_date = text, number, day
    await session.flush()


async def fill_region_from_phone(session: AsyncSession, customer: Customer) -> bool:
    """Set province/city from the phone number's 号段 when the profile has no region yet."""
    if not customer.phone:
        return False
    profile = await session.get(CustomerProfile, customer.id)
    if profile is not None and profile.province:
        return False
    region = region_of_phone(customer.phone)
    if region is None:
        return False
    profile = profile or await ensure_profile(session, customer.id)
    profile.province, profile.city, profile.region_source = region.province, region.city, "phone"
    profile.updated_at = utcnow()
    return True


async def ensure_profiles(session: AsyncSession) -> int:
    """Give every live customer a profile row in one statement (value recompute needs it)."""
    result = await session.execute(
        insert(CustomerProfile).from_select(
            ["customer_id", "updated_at"],
            select(Customer.id, Customer.created_at).where(
                Customer.merged_into_id.is_(None),
                ~exists().where(CustomerProfile.customer_id == Customer.id),
            ),
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def refresh_age_brackets(session: AsyncSession, today: date) -> None:
    """Move customers with a birth date into today's age bracket: one UPDATE per bracket."""
    for bracket in AGE_BRACKETS:
        oldest, newest = bracket_birth_range(bracket, today)
        conditions = [P.birth_date.is_not(None), P.birth_date <= newest]
        if oldest is not None:
            conditions.append(P.birth_date > oldest)
        await session.execute(
            update(CustomerProfile)
            .where(and_(*conditions), P.age_bracket.is_distinct_from(bracket))
            .values(age_bracket=bracket)
        )


@dataclass(frozen=True)
class BirthdayDue:
    customer_id: int
    display_name: str
    owner_id: int | None
    birthday: date  # the coming birthday, this year or next
    days_until: int


async def birthdays_due(session: AsyncSession, today: date, days: int = 7) -> list[BirthdayDue]:
    """Live customers whose birthday falls within the next `days` days (reminder hook for
    broadcasts and the salesperson's reminders)."""
    rows = await session.execute(
        select(Customer.id, Customer.display_name, Customer.owner_id, P.birth_date)
        .join(P, P.customer_id == Customer.id)
        .where(Customer.merged_into_id.is_(None), birthday_within(today, days))
    )
    due = []
    for customer_id, name, owner_id, birth in rows:
        if birth is None:
            continue
        coming = _next_birthday(birth, today)
        due.append(BirthdayDue(customer_id, name, owner_id, coming, (coming - today).days))
    return sorted(due, key=lambda d: (d.days_until, d.customer_id))


def _next_birthday(birth: date, today: date) -> date:
    for year in (today.year, today.year + 1):
        try:
            candidate = birth.replace(year=year)
        except ValueError:  # 29 February: celebrated on 28 February in common years
            candidate = date(year, 2, 28)
        if candidate >= today:
            return candidate
    raise AssertionError("unreachable: next year's birthday is always ahead")


async def remind_birthdays(session: AsyncSession, today: date, days: int = 1) -> int:
    """Notify each customer's salesperson (跟进人) of birthdays due; once per customer and
    year (the notification key), so the scheduler may call it as often as it likes."""
    sent = 0
    for due in await birthdays_due(session, today, days):
        if due.owner_id is None:
            continue
        when = "今天" if due.days_until == 0 else f"{due.days_until} 天后"
        if await notify_staff(
            session,
            staff_id=due.owner_id,
            kind="birthday",
            text=f"客户 {due.display_name} {when}生日（{due.birthday:%m-%d}）",
            key=f"birthday:{due.customer_id}:{due.birthday.year}",
        ):
            sent += 1
    return sent
