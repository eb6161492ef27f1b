"""Tagging and profiling tables: tags in groups, assignments with their history,
auto-tag rules, profile dimensions, custom fields, orders and saved segments.

Segments filter on these tables in SQL, so every column a segment can name is indexed
with the customer id beside it (an index-only probe per condition).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from conversations.db import Base, UTCDateTime, utcnow
from conversations.models import BigId


class TagGroup(Base):
    """A family of tags (意向 intent, 行业 industry, 来源 source); exclusive = single-select."""

    __tablename__ = "tag_groups"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    exclusive: Mapped[bool] = mapped_column(Boolean, default=False)
    color: Mapped[str] = mapped_column(String(16), default="#8c8c8c")
    sort: Mapped[int] = mapped_column(Integer, default=0)
    # WeCom corp tag group (企业客户标签组) this group mirrors, if synced
    wecom_group_id: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Tag(Base):
    __tablename__ = "tags"
    __table_args__ = (UniqueConstraint("group_id", "name"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("tag_groups.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    color: Mapped[str | None] = mapped_column(String(16), nullable=True)  # None: the group's
    sort: Mapped[int] = mapped_column(Integer, default=0)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    # WeCom corp tag (企业客户标签) id; deleted remotely → archived here, never dropped
    wecom_tag_id: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TagRule(Base):
    """An auto-tag rule: keyword / regex / jieba token on text, channel event, or profile field."""

    __tablename__ = "tag_rules"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    tag_id: Mapped[int] = mapped_column(ForeignKey("tags.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # keyword | regex | token | event | profile
    pattern: Mapped[str] = mapped_column(Text, default="")
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    priority: Mapped[int] = mapped_column(Integer, default=100)
    hits: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CustomerTag(Base):
    """A tag on a customer, with who/when/why and the message that caused it.

    No foreign keys: on PostgreSQL each is a trigger call per inserted row, and bulk
    tagging inserts 100,000 rows at once (issue 7's budget is 10 s). Customers and tags
    are never deleted (merged / archived), and the merge moves these rows explicitly
    (tagging.merge.UNCONSTRAINED_REFERENCES)."""

    __tablename__ = "customer_tags"
    # segment conditions read by tag first; the primary key serves the customer page
    # SQLite: WITHOUT ROWID keeps the rows in the primary-key b-tree itself (one b-tree
    # fewer to write per assignment)
    __table_args__ = (
        Index("ix_customer_tags_tag_customer", "tag_id", "customer_id"),
        {"sqlite_with_rowid": False},
    )
    customer_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tag_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source: Mapped[str] = mapped_column(String(16))  # manual | bulk | rule | import | wecom | merge
    actor_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    rule_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    message_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    reason: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TagEvent(Base):
    """Tag history: every add and remove, never updated. An append-only log of ids as
    they were, without foreign keys (see CustomerTag); the merge moves its customer ids
    explicitly (tagging.merge.UNCONSTRAINED_REFERENCES)."""

    __tablename__ = "tag_events"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(BigId, index=True)
    tag_id: Mapped[int] = mapped_column(BigId)
    action: Mapped[str] = mapped_column(String(8))  # add | remove
    source: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    rule_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    message_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    reason: Mapped[str] = mapped_column(String(500), default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CustomerProfile(Base):
    """Profile dimensions and value scores of one customer (1:1 with customers)."""

    __tablename__ = "customer_profiles"
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    province: Mapped[str | None] = mapped_column(String(16), nullable=True, index=True)
    city: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    region_source: Mapped[str | None] = mapped_column(String(8), nullable=True)  # phone|address
    address: Mapped[str | None] = mapped_column(String(300), nullable=True)
    gender: Mapped[str | None] = mapped_column(String(8), nullable=True, index=True)
    birth_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    # month*100+day, so "birthdays in the next N days" is a range scan
    birthday_mmdd: Mapped[int | None] = mapped_column(SmallInteger, nullable=True, index=True)
    age_bracket: Mapped[str | None] = mapped_column(String(8), nullable=True, index=True)
    occupation: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    intent_level: Mapped[str | None] = mapped_column(String(8), nullable=True, index=True)
    # value (RFM 1..5 each, ABC by cumulative monetary share) and the inputs that made them
    rfm_r: Mapped[int | None] = mapped_column(SmallInteger, nullable=True, index=True)
    rfm_f: Mapped[int | None] = mapped_column(SmallInteger, nullable=True, index=True)
    rfm_m: Mapped[int | None] = mapped_column(SmallInteger, nullable=True, index=True)
    abc_class: Mapped[str | None] = mapped_column(String(1), nullable=True, index=True)
    recency_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    frequency: Mapped[int | None] = mapped_column(Integer, nullable=True)
    monetary_cents: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    value_computed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CustomerHobby(Base):
    __tablename__ = "customer_hobbies"
    __table_args__ = (Index("ix_customer_hobbies_hobby_customer", "hobby", "customer_id"),)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    hobby: Mapped[str] = mapped_column(String(32), primary_key=True)


class CustomField(Base):
    """A profile field defined at run time in the console: text, number, date or choice."""

    __tablename__ = "custom_fields"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(8))  # text | number | date | choice
    choices: Mapped[list[Any]] = mapped_column(default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CustomerFieldValue(Base):
    __tablename__ = "customer_field_values"
    __table_args__ = (
        Index("ix_customer_field_values_text", "field_id", "value_text", "customer_id"),
        Index("ix_customer_field_values_number", "field_id", "value_number", "customer_id"),
        Index("ix_customer_field_values_date", "field_id", "value_date", "customer_id"),
    )
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    field_id: Mapped[int] = mapped_column(ForeignKey("custom_fields.id"), primary_key=True)
    value_text: Mapped[str | None] = mapped_column(String(500), nullable=True)
    value_number: Mapped[float | None] = mapped_column(Float, nullable=True)
    value_date: Mapped[date | None] = mapped_column(Date, nullable=True)


class Order(Base):
    """A deal/order amount imported by CSV or API; feeds the M of RFM and ABC classes."""

    __tablename__ = "orders"
    __table_args__ = (Index("ix_orders_customer_ordered", "customer_id", "ordered_at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    # the source system's order number: re-importing the same file adds nothing
    external_ref: Mapped[str | None] = mapped_column(String(128), nullable=True, unique=True)
    amount_cents: Mapped[int] = mapped_column(BigInteger)  # integer fen: no float money
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    ordered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(String(16), default="api")  # api | csv
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Segment(Base):
    """A saved customer query: the text expression and its JSON AST (visual builder)."""

    __tablename__ = "segments"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(String(500), default="")
    expression: Mapped[str] = mapped_column(Text)
    ast: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_counted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
