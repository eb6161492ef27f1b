"""The fixed profile dimensions and how a raw value (console form, import cell, segment
expression) becomes their stored value. Pure functions; each raises ValueError with a
message meant for the person who typed the value."""

from __future__ import annotations

import re
from datetime import date

from .regions import PROVINCES, region_from_text

GENDERS = ("male", "female")
_GENDER_WORDS = {
    "male": "male",
    "m": "male",
    "男": "male",
    "先生": "male",
    "female": "female",
    "f": "female",
    "女": "female",
    "女士": "female",
}
# lower bounds of the age brackets (年龄段); the last one is open-ended
AGE_BRACKETS = ("<18", "18-24", "25-34", "35-44", "45-54", "55-64", "65+")
_BRACKET_FLOORS = (0, 18, 25, 35, 45, 55, 65)
INTENT_LEVELS = ("none", "low", "medium", "high")  # ordered: intent>=medium works
_INTENT_WORDS = {
    "none": "none",
    "无": "none",
    "low": "low",
    "低": "low",
    "medium": "medium",
    "中": "medium",
    "high": "high",
    "高": "high",
}


def normalise_gender(raw: str) -> str:
    value = _GENDER_WORDS.get(raw.strip().lower())
    if value is None:
        raise ValueError(f"gender must be one of 男/女/male/female, not {raw!r}")
    return value


def normalise_intent(raw: str) -> str:
    value = _INTENT_WORDS.get(raw.strip().lower())
    if value is None:
        raise ValueError(f"intent level must be one of 高/中/低/无 or {'/'.join(INTENT_LEVELS)}")
    return value


def normalise_age_bracket(raw: str) -> str:
    value = raw.strip()
    if value not in AGE_BRACKETS:
        raise ValueError(f"age bracket must be one of {', '.join(AGE_BRACKETS)}")
    return value


def age_on(birth: date, today: date) -> int:
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def age_bracket_of(birth: date, today: date) -> str:
    age = age_on(birth, today)
    bracket = AGE_BRACKETS[0]
    for floor, name in zip(_BRACKET_FLOORS, AGE_BRACKETS, strict=True):
        if age >= floor:
            bracket = name
    return bracket


def bracket_birth_range(bracket: str, today: date) -> tuple[date | None, date | None]:
    """Birth dates (after, on-or-before) of people in `bracket` today, for set-based refresh."""
    index = AGE_BRACKETS.index(bracket)
    floor = _BRACKET_FLOORS[index]
    ceiling = _BRACKET_FLOORS[index + 1] if index + 1 < len(_BRACKET_FLOORS) else None
    newest = years_before(today, floor)  # born on or before this date: at least `floor`
    oldest = years_before(today, ceiling) if ceiling is not None else None  # born after this
    return oldest, newest


def years_before(today: date, years: int) -> date:
    try:
        return today.replace(year=today.year - years)
    except ValueError:  # 29 February in a non-leap year
        return today.replace(year=today.year - years, day=28)


_DATE_FORMATS = (
    re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?$"),
    re.compile(r"^(\d{4})(\d{2})(\d{2})$"),
)


def parse_date(raw: str) -> date:
    """A date written as 2026-01-31, 2026/1/31, 2026.1.31, 2026年1月31日 or 20260131."""
    text = raw.strip()
    for pattern in _DATE_FORMATS:
        match = pattern.match(text)
        if match:
            year, month, day = (int(part) for part in match.groups())
            try:
                return date(year, month, day)
            except ValueError as exc:
                raise ValueError(f"{raw!r} is not a real date") from exc
    raise ValueError(f"date {raw!r} must look like 2026-01-31")


def parse_birthday(raw: str, today: date) -> date:
    birth = parse_date(raw)
    if birth > today or birth.year < today.year - 120:
        raise ValueError(f"birthday {raw!r} is not plausible")
    return birth


def mmdd(day: date) -> int:
    return day.month * 100 + day.day


def normalise_region_value(raw: str) -> str:
    """广东省 → 广东, 深圳市 → 深圳: the short form regions are stored in."""
    value = raw.strip()
    region = region_from_text(value)
    if (
        region is not None
        and region.province in PROVINCES
        and len(value) <= len(region.province) + 5
        and region.city in (None, region.province)
    ):
        return region.province
    for suffix in ("市", "地区"):
        if value.endswith(suffix) and len(value) > len(suffix) + 1:
            return value[: -len(suffix)]
    return value
