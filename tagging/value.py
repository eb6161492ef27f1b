"""Customer value: RFM scores (recency, frequency, monetary; 1–5 each) and ABC classes
(A: the customers who make the first 70 % of revenue, B: the next 20 %, C: the rest).

Inputs come from interactions (days with an inbound message) and from orders, both
within a window. Thresholds are configuration (`[tagging.value]`), and `explain` says in
words how a score came about, for the console.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import distinct, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.models import Conversation, Customer, Message

from .models import CustomerProfile, Order
from .profiles import ensure_profiles

WRITE_CHUNK = 2000
_live = Customer.merged_into_id.is_(None)


def _four_ascending(name: str, values: Any) -> tuple[int, int, int, int]:
    items = tuple(int(v) for v in values)
    if len(items) != 4 or any(b <= a for a, b in zip(items, items[1:], strict=False)):
        raise ValueError(f"{name} needs four increasing numbers, e.g. [7, 30, 90, 180]")
    return items[0], items[1], items[2], items[3]


@dataclass(frozen=True)
class ValueConfig:
    window_days: int = 365
    # R: last interaction within ≤7 days → 5, ≤30 → 4, ≤90 → 3, ≤180 → 2, else 1
    recency_days: tuple[int, int, int, int] = (7, 30, 90, 180)
    # F: interactions in the window ≥16 → 5, ≥8 → 4, ≥4 → 3, ≥2 → 2, else 1
    frequency: tuple[int, int, int, int] = (2, 4, 8, 16)
    # M: order amount in the window (yuan) ≥50000 → 5, ≥10000 → 4, ≥2000 → 3, ≥500 → 2
    monetary_yuan: tuple[int, int, int, int] = (500, 2000, 10000, 50000)
    # count days with a customer message as interactions (besides orders)
    count_messages: bool = True
    abc_shares: tuple[float, float] = (0.7, 0.9)

    @classmethod
    def from_settings(cls, section: Mapping[str, Any]) -> ValueConfig:
        """Read `[tagging.value]`; unknown keys and bad thresholds are errors."""
        known = {
            "window_days",
            "recency_days",
            "frequency",
            "monetary_yuan",
            "count_messages",
            "abc_shares",
        }
        unknown = set(section) - known
        if unknown:
            raise ValueError(f"unknown [tagging.value] keys: {sorted(unknown)}")
        base = cls()
        shares = tuple(float(v) for v in section.get("abc_shares", base.abc_shares))
        if len(shares) != 2 or not 0 < shares[0] < shares[1] <= 1:
            raise ValueError("abc_shares needs two shares 0 < A < B <= 1, e.g. [0.7, 0.9]")
        window = int(section.get("window_days", base.window_days))
        if window < 1:
            raise ValueError("window_days must be at least 1")
        return cls(
            window_days=window,
            recency_days=_four_ascending(
                "recency_days", section.get("recency_days", base.recency_days)
            ),
            frequency=_four_ascending("frequency", section.get("frequency", base.frequency)),
            monetary_yuan=_four_ascending(
                "monetary_yuan", section.get("monetary_yuan", base.monetary_yuan)
            ),
            count_messages=bool(section.get("count_messages", base.count_messages)),
            abc_shares=(shares[0], shares[1]),
        )

    def explain(self) -> list[str]:
        """The formula in words, shown beside the scores in the console."""
        r, f, m = self.recency_days, self.frequency, self.monetary_yuan
        counted = "orders and days with a customer message" if self.count_messages else "orders"
        a, b = self.abc_shares
        return [
            f"Window: the last {self.window_days} days.",
            f"R (recency): last interaction ≤{r[0]} days ago → 5, ≤{r[1]} → 4, ≤{r[2]} → 3, "
            f"≤{r[3]} → 2, older or never → 1.",
            f"F (frequency): {counted}; ≥{f[3]} → 5, ≥{f[2]} → 4, ≥{f[1]} → 3, ≥{f[0]} → 2, "
            "else 1.",
            f"M (monetary): order total ≥¥{m[3]} → 5, ≥¥{m[2]} → 4, ≥¥{m[1]} → 3, ≥¥{m[0]} → 2, "
            "else 1.",
            f"ABC: customers ranked by order total; A make the first {a:.0%} of revenue, "
            f"B the next {b - a:.0%}, C the rest and everyone without orders.",
        ]


def score_recency(days: int | None, thresholds: tuple[int, int, int, int]) -> int:
    if days is None:
        return 1
    for score, limit in zip((5, 4, 3, 2), thresholds, strict=True):
        if days <= limit:
            return score
    return 1


def score_at_least(value: int, thresholds: tuple[int, int, int, int]) -> int:
    for score, limit in zip((5, 4, 3, 2), reversed(thresholds), strict=True):
        if value >= limit:
            return score
    return 1


@dataclass(frozen=True)
class ValueInputs:
    last_at: datetime | None
    frequency: int
    monetary_cents: int


@dataclass(frozen=True)
class ValueScores:
    recency_days: int | None
    r: int
    f: int
    m: int


def score(inputs: ValueInputs, config: ValueConfig, now: datetime) -> ValueScores:
    days = None if inputs.last_at is None else max(0, (now - inputs.last_at).days)
    return ValueScores(
        recency_days=days,
        r=score_recency(days, config.recency_days),
        f=score_at_least(inputs.frequency, config.frequency),
        m=score_at_least(inputs.monetary_cents // 100, config.monetary_yuan),
    )


def abc_classes(monetary: Mapping[int, int], shares: tuple[float, float]) -> dict[int, str]:
    """Customer → A/B/C by cumulative share of the total (Pareto). Ties keep id order."""
    total = sum(v for v in monetary.values() if v > 0)
    classes: dict[int, str] = {}
    running = 0
    for customer_id, amount in sorted(monetary.items(), key=lambda kv: (-kv[1], kv[0])):
        if amount <= 0 or total == 0:
            classes[customer_id] = "C"
            continue
        # the class is decided by the share reached *before* this customer
        share_before = running / total
        classes[customer_id] = (
            "A" if share_before < shares[0] else "B" if share_before < shares[1] else "C"
        )
        running += amount
    return classes


@dataclass
class ValueReport:
    scored: int = 0
    classes: dict[str, int] = field(default_factory=lambda: {"A": 0, "B": 0, "C": 0})
    explanation: list[str] = field(default_factory=list)


async def _inputs(
    session: AsyncSession, config: ValueConfig, now: datetime
) -> dict[int, ValueInputs]:
    since = now - timedelta(days=config.window_days)
    last: dict[int, datetime] = {}
    freq: dict[int, int] = {}
    money: dict[int, int] = {}
    orders = await session.execute(
        select(
            Order.customer_id,
            func.count(),
            func.coalesce(func.sum(Order.amount_cents), 0),
            func.max(Order.ordered_at),
        )
        .join(Customer, Customer.id == Order.customer_id)
        .where(Order.ordered_at >= since, Order.ordered_at <= now, _live)
        .group_by(Order.customer_id)
    )
    for customer_id, count, cents, latest in orders:
        freq[customer_id] = int(count)
        money[customer_id] = int(cents)
        last[customer_id] = _aware(latest)
    messages = await session.execute(
        select(
            Conversation.customer_id,
            func.count(distinct(func.date(Message.occurred_at))),
            func.max(Message.occurred_at),
        )
        .join(Conversation, Conversation.id == Message.conversation_id)
        .join(Customer, Customer.id == Conversation.customer_id)
        .where(
            _live,
            Message.direction == "in",
            Message.sender_type == "customer",
            Message.occurred_at >= since,
            Message.occurred_at <= now,
        )
        .group_by(Conversation.customer_id)
    )
    for customer_id, days, latest in messages:
        if config.count_messages:
            freq[customer_id] = freq.get(customer_id, 0) + int(days)
        latest_at = _aware(latest)
        if customer_id not in last or latest_at > last[customer_id]:
            last[customer_id] = latest_at
    return {
        cid: ValueInputs(last.get(cid), freq.get(cid, 0), money.get(cid, 0))
        for cid in set(last) | set(freq) | set(money)
    }


def _aware(value: Any) -> datetime:
    # aggregates bypass the column type: SQLite hands back text, PostgreSQL aware datetimes
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


async def recompute_values(
    session: AsyncSession, config: ValueConfig, now: datetime
) -> ValueReport:
    """Recompute every live customer's RFM scores and ABC class (the scheduler's job).

    Customers without any activity in the window get R=F=M=1 and class C."""
    await ensure_profiles(session)
    inputs = await _inputs(session, config, now)
    classes = abc_classes({cid: i.monetary_cents for cid, i in inputs.items()}, config.abc_shares)
    await session.execute(
        update(CustomerProfile).values(
            rfm_r=1,
            rfm_f=1,
            rfm_m=1,
            abc_class="C",
            recency_days=None,
            frequency=0,
            monetary_cents=0,
            value_computed_at=now,
        )
    )
    report = ValueReport(explanation=config.explain())
    rows: list[dict[str, Any]] = []
    for customer_id, item in inputs.items():
        scores = score(item, config, now)
        rows.append(
            {
                "customer_id": customer_id,
                "rfm_r": scores.r,
                "rfm_f": scores.f,
                "rfm_m": scores.m,
                "abc_class": classes[customer_id],
                "recency_days": scores.recency_days,
                "frequency": item.frequency,
                "monetary_cents": item.monetary_cents,
            }
        )
    for start in range(0, len(rows), WRITE_CHUNK):
        await session.execute(update(CustomerProfile), rows[start : start + WRITE_CHUNK])
    report.scored = len(rows)
    for row in rows:
        report.classes[row["abc_class"]] += 1
    report.classes["C"] = (
        int(await session.scalar(select(func.count()).select_from(CustomerProfile)) or 0)
        - report.classes["A"]
        - report.classes["B"]
    )
    return report


def explain_customer(profile: CustomerProfile, config: ValueConfig) -> list[str]:
    """Why this customer has these scores, in words."""
    if profile.value_computed_at is None:
        return ["Not scored yet."]
    recency = (
        "no interaction in the window"
        if profile.recency_days is None
        else f"last interaction {profile.recency_days} days ago"
    )
    return [
        f"R={profile.rfm_r}: {recency}.",
        f"F={profile.rfm_f}: {profile.frequency or 0} interactions in {config.window_days} days.",
        f"M={profile.rfm_m}: order total ¥{(profile.monetary_cents or 0) / 100:,.2f}.",
        f"Class {profile.abc_class} (computed {profile.value_computed_at:%Y-%m-%d %H:%M} UTC).",
    ]
