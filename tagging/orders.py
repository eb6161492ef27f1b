"""Deal/order amounts (成交订单) imported by CSV or API; they feed RFM and ABC classes.

Amounts are integer fen (分) so sums are exact; an order's external reference makes
re-importing the same export a no-op."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import datetime, time, tzinfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.db import utcnow
from conversations.models import Customer

from .dimensions import parse_date
from .models import Order
from .phones import normalise_phone

_AMOUNT = re.compile(r"^[¥￥]?\s*(-?\d{1,12})(?:\.(\d{1,2}))?$")


def parse_amount_cents(raw: str) -> int:
    """ "1,299.50" / "¥1299.5" → 129950 fen; ValueError when it is not an amount."""
    match = _AMOUNT.match(raw.strip().replace(",", ""))
    if not match:
        raise ValueError(f"{raw!r} is not an amount such as 1299.50")
    yuan, fen = match.group(1), (match.group(2) or "").ljust(2, "0")
    sign = -1 if yuan.startswith("-") else 1
    return int(yuan) * 100 + sign * int(fen)


async def record_order(
    session: AsyncSession,
    customer_id: int,
    *,
    amount_cents: int,
    ordered_at: datetime,
    external_ref: str | None = None,
    currency: str = "CNY",
    source: str = "api",
) -> Order | None:
    """Add an order; None when `external_ref` was already recorded (idempotent import)."""
    if external_ref:
        known = await session.scalar(select(Order.id).where(Order.external_ref == external_ref))
        if known is not None:
            return None
    order = Order(
        customer_id=customer_id,
        amount_cents=amount_cents,
        ordered_at=ordered_at,
        external_ref=external_ref or None,
        currency=currency,
        source=source,
        created_at=utcnow(),
    )
    session.add(order)
    await session.flush()
    return order


@dataclass(frozen=True)
class RowError:
    row: int  # 1-based data row (header is row 0)
    field: str
    reason: str


@dataclass
class OrderImportReport:
    dry_run: bool
    rows: int = 0
    imported: int = 0
    already_known: int = 0
    errors: list[RowError] = field(default_factory=list)


async def _customer_for(session: AsyncSession, row: dict[str, str]) -> int | None:
    if row.get("customer_id", "").strip().isdigit():
        found = await session.get(Customer, int(row["customer_id"]))
        return found.merged_into_id or found.id if found is not None else None
    phone = normalise_phone(row.get("phone", ""))
    email = row.get("email", "").strip().lower()
    for column, value in ((Customer.phone, phone), (Customer.email, email)):
        if value:
            found_id = await session.scalar(
                select(Customer.id)
                .where(column == value, Customer.merged_into_id.is_(None))
                .order_by(Customer.id)
                .limit(1)
            )
            if found_id is not None:
                return int(found_id)
    return None


async def import_orders_csv(
    session: AsyncSession, text: str, *, tz: tzinfo, dry_run: bool = True
) -> OrderImportReport:
    """Import orders from CSV with columns order_no, customer_id|phone|email, amount,
    ordered_at (date or ISO time, local), currency. Dry-run reports without writing."""
    report = OrderImportReport(dry_run=dry_run)
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    for index, raw in enumerate(reader, start=1):
        report.rows += 1
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items()}
        errors_before = len(report.errors)
        customer_id = await _customer_for(session, row)
        if customer_id is None:
            report.errors.append(
                RowError(index, "customer", "no customer with this id/phone/email")
            )
        try:
            amount = parse_amount_cents(row.get("amount", ""))
        except ValueError as exc:
            report.errors.append(RowError(index, "amount", str(exc)))
        try:
            ordered_at = _parse_when(row.get("ordered_at", ""), tz)
        except ValueError as exc:
            report.errors.append(RowError(index, "ordered_at", str(exc)))
        if len(report.errors) > errors_before or dry_run:
            continue
        assert customer_id is not None
        order = await record_order(
            session,
            customer_id,
            amount_cents=amount,
            ordered_at=ordered_at,
            external_ref=row.get("order_no") or None,
            currency=(row.get("currency") or "CNY").upper()[:3],
            source="csv",
        )
        if order is None:
            report.already_known += 1
        else:
            report.imported += 1
    return report


def _parse_when(raw: str, tz: tzinfo) -> datetime:
    text = raw.strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return datetime.combine(parse_date(text), time(12), tz)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=tz)
