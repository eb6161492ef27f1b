"""Who a broadcast goes to. An `AudienceSource` yields customer ids; when it can also say
so in SQL (`select_ids`) the freeze is one INSERT … SELECT (100,000 rows in seconds).

Built in: explicit customer ids, an uploaded list (found or created by phone/email),
customers of chosen salespeople (跟进人), every customer with an identity on a channel
kind, and today's birthdays. Segments and tags come from `tagging.segments`: register a
factory with `AudienceRegistry.register("segment", …)` (see broadcasts/README.md).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import Select, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.models import Customer, Identity

BATCH = 5000


class AudienceSource(Protocol):
    def select_ids(self) -> Select[Any] | None:
        """A SELECT of customer ids for a set-based freeze, or None to use `batches`."""
        ...

    def batches(self, session: AsyncSession, size: int = BATCH) -> AsyncIterator[Sequence[int]]:
        """Customer ids in batches (any order, duplicates allowed: the freeze dedupes)."""
        ...


@dataclass(frozen=True)
class TaskTarget:
    """A recipient that is not a customer: a WeCom customer group (客户群), reached only
    through its account's task channel; `address` is the channel's id for it (chat id)."""

    account_id: int
    address: str


class TaskAudience:
    """An audience of task targets (WeCom customer groups): frozen as they are, one row
    per target with no customer, straight into 'grouping' for the run's tasks."""

    def __init__(self, targets: Callable[[AsyncSession], Awaitable[Sequence[TaskTarget]]]) -> None:
        self._targets = targets

    async def targets(self, session: AsyncSession) -> list[TaskTarget]:
        return list(dict.fromkeys(await self._targets(session)))


def _live() -> Any:
    return Customer.merged_into_id.is_(None)


class SelectAudience:
    """Any audience expressible as a SELECT of Customer.id."""

    def __init__(self, query: Select[Any]) -> None:
        self._query = query

    def select_ids(self) -> Select[Any] | None:
        return self._query

    async def batches(
        self, session: AsyncSession, size: int = BATCH
    ) -> AsyncIterator[Sequence[int]]:
        result = await session.stream_scalars(self._query.execution_options(yield_per=size))
        async for part in result.partitions(size):
            yield [int(i) for i in part]


def explicit_customers(ids: Sequence[int]) -> SelectAudience:
    return SelectAudience(select(Customer.id).where(Customer.id.in_(list(ids)), _live()))


def customers_of_salespeople(staff_ids: Sequence[int]) -> SelectAudience:
    """Customers whose follow-up salesperson (跟进人) is one of `staff_ids`."""
    return SelectAudience(
        select(Customer.id).where(Customer.owner_id.in_(list(staff_ids)), _live())
    )


def customers_on_channel(kind: str, account_id: int | None = None) -> SelectAudience:
    """Every customer with an identity on a channel kind (optionally one account)."""
    ids = select(Identity.customer_id).where(Identity.channel_kind == kind)
    if account_id is not None:
        ids = ids.where(Identity.account_id == account_id)
    return SelectAudience(select(Customer.id).where(Customer.id.in_(ids), _live()))


def birthdays_on(day: datetime, zone: str) -> SelectAudience:
    """Customers whose profile["birthday"] ('YYYY-MM-DD' or 'MM-DD') falls on `day`."""
    month_day = day.astimezone(ZoneInfo(zone)).strftime("%m-%d")
    birthday = Customer.profile["birthday"].as_string()
    return SelectAudience(
        select(Customer.id).where(
            or_(birthday == month_day, birthday.like(f"%-{month_day}")), _live()
        )
    )


# ---- uploaded lists

_PHONE = re.compile(r"^\+?\d{6,15}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class UploadResult:
    customer_ids: list[int]
    created: int
    rejected: list[str]  # lines we could not read, shown to the marketer


def normalise_phone(raw: str, default_country: str = "86") -> str | None:
    """E.164: a mainland mobile without a prefix gets +86."""
    digits = re.sub(r"[\s\-()]", "", raw)
    if not _PHONE.match(digits):
        return None
    if digits.startswith("+"):
        return digits
    if digits.startswith("00"):
        return "+" + digits[2:]
    if len(digits) == 11 and digits.startswith("1"):
        return f"+{default_country}{digits}"
    return "+" + digits


async def import_contacts(session: AsyncSession, csv_text: str) -> UploadResult:
    """Find or create customers for each line of an uploaded CSV (phone/email/name columns,
    or bare values one per line). Existing customers are matched by phone, then email."""
    rows = list(csv.reader(io.StringIO(csv_text.lstrip("\ufeff"))))
    header = [c.strip().lower() for c in rows[0]] if rows else []
    named = any(h in ("phone", "email", "手机", "手机号", "邮箱", "name", "姓名") for h in header)
    if named:
        rows = rows[1:]
    ids: list[int] = []
    rejected: list[str] = []
    created = 0
    for row in rows:
        fields = _fields(header if named else [], row)
        phone = normalise_phone(fields["phone"]) if fields["phone"] else None
        email = fields["email"].lower() if _EMAIL.match(fields["email"]) else None
        if phone is None and email is None:
            if any(c.strip() for c in row):
                rejected.append(",".join(row)[:200])
            continue
        customer = None
        if phone:
            customer = await session.scalar(
                select(Customer).where(Customer.phone == phone, _live()).limit(1)
            )
        if customer is None and email:
            customer = await session.scalar(
                select(Customer).where(Customer.email == email, _live()).limit(1)
            )
        if customer is None:
            customer = Customer(
                display_name=fields["name"] or phone or email or "",
                phone=phone,
                email=email,
                first_channel="import",
            )
            session.add(customer)
            await session.flush()
            created += 1
        ids.append(customer.id)
    return UploadResult(list(dict.fromkeys(ids)), created, rejected)


def _fields(header: Sequence[str], row: Sequence[str]) -> dict[str, str]:
    out = {"phone": "", "email": "", "name": ""}
    if header:
        aliases = {"手机": "phone", "手机号": "phone", "邮箱": "email", "姓名": "name"}
        for name, value in zip(header, row, strict=False):
            key = aliases.get(name, name)
            if key in out:
                out[key] = value.strip()
        return out
    for value in row:
        value = value.strip()
        if _EMAIL.match(value):
            out["email"] = value
        elif normalise_phone(value):
            out["phone"] = value
        elif value:
            out["name"] = value
    return out


# ---- from a broadcast's stored audience spec

AudienceFactory = Callable[[Mapping[str, Any], datetime, str], AudienceSource | TaskAudience]


class AudienceRegistry:
    """audience["kind"] → source; tagging registers "segment" and "tags" here."""

    def __init__(self) -> None:
        self._factories: dict[str, AudienceFactory] = {
            "customers": lambda spec, _at, _tz: explicit_customers(spec.get("customer_ids", [])),
            "upload": lambda spec, _at, _tz: explicit_customers(spec.get("customer_ids", [])),
            "salespeople": lambda spec, _at, _tz: customers_of_salespeople(
                spec.get("staff_ids", [])
            ),
            "channel": lambda spec, _at, _tz: customers_on_channel(
                str(spec["channel_kind"]), spec.get("account_id")
            ),
            "birthday": lambda _spec, at, tz: birthdays_on(at, tz),
        }

    def register(self, kind: str, factory: AudienceFactory) -> None:
        self._factories[kind] = factory

    def kinds(self) -> list[str]:
        return sorted(self._factories)

    def source(
        self, spec: Mapping[str, Any], fire_time: datetime, zone: str
    ) -> AudienceSource | TaskAudience:
        kind = str(spec.get("kind", ""))
        if kind not in self._factories:
            raise LookupError(f"unknown audience kind {kind!r}")
        return self._factories[kind](spec, fire_time, zone)
