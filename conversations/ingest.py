"""Set-based storing of many inbound messages in one transaction (group commit).

`record_inbound` handles one callback at a time; under load the per-statement cost of
that path, not the disk, bounds throughput. Here a batch of messages costs a handful of
statements: one multi-row INSERT … ON CONFLICT DO NOTHING RETURNING (provider retries
fall out there), one UPDATE per touched conversation and one for customers. Identities and
conversations seen before come from a small in-process cache (their ids never change;
a customer merge moves conversations, it does not renumber them); first contacts are
created together, a few statements for the whole batch.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, case, func, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import BindParameter

from .actions import preview_of
from .db import utcnow
from .identities import resolve_identity, thread_conversation
from .models import ChannelAccount, Conversation, Customer, Identity, Message
from .types import Direction, InboundMessage, MessageKind, MessageStatus, SenderType

MAX_ROWS_PER_INSERT = 200  # keeps a multi-row INSERT under SQLite's bound-parameter limit


class ConversationCache:
    """(account id, external id) → (identity id, conversation id), least recently used."""

    def __init__(self, size: int = 50_000) -> None:
        self.size = size
        self._map: OrderedDict[tuple[int, str], tuple[int, int]] = OrderedDict()

    def get(self, key: tuple[int, str]) -> tuple[int, int] | None:
        found = self._map.get(key)
        if found is not None:
            self._map.move_to_end(key)
        return found

    def clear(self) -> None:
        """Forget everything (after a rollback, cached new ids may not exist)."""
        self._map.clear()

    def put(self, key: tuple[int, str], value: tuple[int, int]) -> None:
        self._map[key] = value
        self._map.move_to_end(key)
        if len(self._map) > self.size:
            self._map.popitem(last=False)


@dataclass
class _Row:
    index: int
    account: ChannelAccount
    item: InboundMessage
    conversation_id: int = 0


async def record_messages(
    session: AsyncSession,
    entries: Sequence[tuple[ChannelAccount, InboundMessage]],
    cache: ConversationCache,
) -> list[int | None]:
    """`store_messages` in an async session."""
    return await session.run_sync(store_messages, entries, cache)


def store_messages(
    session: Session,
    entries: Sequence[tuple[ChannelAccount, InboundMessage]],
    cache: ConversationCache,
) -> list[int | None]:
    """Store messages idempotently; returns the new id per entry, None for duplicates.
    Synchronous: callback ingest runs it on a worker thread (Database.write_in_thread)."""
    results: list[int | None] = [None] * len(entries)
    seen: set[tuple[int, str]] = set()
    candidates: list[_Row] = []
    for index, (account, item) in enumerate(entries):
        key = (account.id, item.provider_key)
        if key in seen:
            continue  # the same delivery twice in one batch
        seen.add(key)
        candidates.append(_Row(index, account, item))
    if not candidates:
        return results
    # no existence check first: a retried delivery meets ON CONFLICT DO NOTHING below,
    # and its sender is known (the first delivery stored it), so it costs no identity work
    fresh = candidates
    unthreaded: list[_Row] = []
    for row in fresh:
        threaded = (
            thread_conversation(session, row.account.id, row.item.thread_refs)
            if row.item.thread_refs
            else None
        )
        if threaded is not None:
            row.conversation_id = threaded.id
        else:
            unthreaded.append(row)
    _resolve_conversations(session, unthreaded, cache)
    now = utcnow()
    by_key: dict[tuple[int, str], _Row] = {(r.account.id, r.item.provider_key): r for r in fresh}
    for start in range(0, len(fresh), MAX_ROWS_PER_INSERT):
        chunk = fresh[start : start + MAX_ROWS_PER_INSERT]
        inserted = _insert_returning(session, [_values(r, now) for r in chunk])
        for msg_id, account_id, provider_key in inserted:
            results[by_key[(account_id, provider_key)].index] = msg_id
    stored = [r for r in fresh if results[r.index] is not None]
    _touch_conversations(session, stored)
    return results


Key = tuple[int, str]  # (account id, external id)
Known = tuple[int, int, int | None]  # identity id, customer id, conversation id


def _resolve_conversations(
    session: Session, rows: Sequence[_Row], cache: ConversationCache
) -> None:
    """Set each row's conversation, set-based: the cache, then one query for senders we
    know, then new customers, identities and conversations in a few multi-row INSERTs
    (a burst of first contacts must not cost a dozen statements each). A sender with
    contact hints (phone, email, unionid) goes through `resolve_identity`, which joins
    them to the customer who already has that phone or address."""
    pending: dict[Key, list[_Row]] = {}
    for row in rows:
        key = (row.account.id, row.item.external_id)
        cached = cache.get(key)
        if cached is not None:
            row.conversation_id = cached[1]
        else:
            pending.setdefault(key, []).append(row)
    if not pending:
        return
    found = _known(session, list(pending))
    plain: list[Key] = []
    for key in pending:
        if key in found:
            continue
        first = pending[key][0]
        if first.item.contact_hints:
            identity = resolve_identity(
                session,
                first.account,
                key[1],
                display_name=first.item.sender_name,
                hints=first.item.contact_hints,
            )
            found[key] = (identity.id, identity.customer_id, None)
        else:
            plain.append(key)
    if plain:
        _create_identities(session, [pending[key][0] for key in plain])
        found.update(_known(session, plain))  # a concurrent writer may have won
    lonely = [key for key, (_i, _c, conv) in found.items() if conv is None]
    if lonely:
        _create_conversations(session, [(key[0], found[key]) for key in lonely])
        found.update(_known(session, lonely))
    for key, waiting in pending.items():
        identity_id, _customer_id, conversation_id = found[key]
        assert conversation_id is not None  # created just above
        cache.put(key, (identity_id, conversation_id))
        for row in waiting:
            row.conversation_id = conversation_id


def _known(session: Session, keys: Sequence[Key]) -> dict[Key, Known]:
    """Identity, customer and (if any) conversation of each sender that exists."""
    found: dict[Key, Known] = {}
    for start in range(0, len(keys), MAX_ROWS_PER_INSERT):
        chunk = keys[start : start + MAX_ROWS_PER_INSERT]
        rows = session.execute(
            select(
                Identity.account_id,
                Identity.external_id,
                Identity.id,
                Identity.customer_id,
                Conversation.id,
            )
            .outerjoin(
                Conversation,
                (Conversation.account_id == Identity.account_id)
                & (Conversation.identity_id == Identity.id),
            )
            .where(tuple_(Identity.account_id, Identity.external_id).in_(chunk))
        )
        for account_id, external_id, identity_id, customer_id, conversation_id in rows:
            found[(account_id, external_id)] = (identity_id, customer_id, conversation_id)
    return found


def _create_identities(session: Session, firsts: Sequence[_Row]) -> None:
    """One new customer and identity per sender (their first message's row)."""
    customers: Table = Customer.__table__  # type: ignore[assignment]
    identities: Table = Identity.__table__  # type: ignore[assignment]
    now = utcnow()
    created = session.execute(
        _insert(session, customers).returning(customers.c.id, sort_by_parameter_order=True),
        [
            {
                "display_name": row.item.sender_name or row.item.external_id,
                "first_channel": row.account.kind,
                "profile": {},
                "created_at": now,
                "updated_at": now,
            }
            for row in firsts
        ],
    )
    customer_ids = [int(cid) for (cid,) in created.all()]
    # a sender that raced into existence keeps its identity; the spare customer stays
    # empty, as in resolve_identity
    session.execute(
        _insert(session, identities).on_conflict_do_nothing(
            index_elements=["channel_kind", "account_id", "external_id"]
        ),
        [
            {
                "customer_id": customer_id,
                "channel_kind": row.account.kind,
                "account_id": row.account.id,
                "external_id": row.item.external_id,
                "display_name": row.item.sender_name,
                "created_at": now,
            }
            for row, customer_id in zip(firsts, customer_ids, strict=True)
        ],
    )


def _create_conversations(session: Session, senders: Sequence[tuple[int, Known]]) -> None:
    """A conversation for each (account, identity) that has none yet."""
    table: Table = Conversation.__table__  # type: ignore[assignment]
    now = utcnow()
    session.execute(
        _insert(session, table).on_conflict_do_nothing(
            index_elements=["account_id", "identity_id"]
        ),
        [
            {
                "customer_id": customer_id,
                "account_id": account_id,
                "identity_id": identity_id,
                "status": "open",
                "mode": "bot",
                "unread_count": 0,
                "last_preview": "",
                "created_at": now,
            }
            for account_id, (identity_id, customer_id, _conv) in senders
        ],
    )


def _insert(session: Session, table: Table) -> Any:
    """The dialect's INSERT (both have on_conflict_do_nothing)."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _values(row: _Row, now: datetime) -> dict[str, Any]:
    item = row.item
    inbound = item.direction == Direction.INBOUND
    return {
        "conversation_id": row.conversation_id,
        "account_id": row.account.id,
        "direction": item.direction.value,
        "kind": item.kind.value,
        "text": item.text,
        "payload": dict(item.payload),
        "raw": item.raw,
        "provider_key": item.provider_key,
        "provider_message_id": item.provider_message_id,
        "sender_type": (SenderType.CUSTOMER if inbound else SenderType.STAFF).value,
        "sender_staff_id": None,
        "staff_external_id": item.staff_external_id,
        "purpose": None,
        "status": MessageStatus.RECEIVED.value,
        "error_code": None,
        "status_reason": None,
        "automated": item.automated,
        "occurred_at": item.occurred_at,
        "created_at": now,
        "status_at": None,
        "processed_at": None,
    }


def _insert_returning(session: Session, rows: list[dict[str, Any]]) -> list[tuple[int, int, str]]:
    """executemany of one cached statement: SQLAlchemy batches it into multi-row
    INSERT … RETURNING ("insertmanyvalues") without recompiling per batch size."""
    table: Table = Message.__table__  # type: ignore[assignment]  # declarative tables are Tables
    stmt = (
        _insert(session, table)
        .on_conflict_do_nothing(index_elements=["account_id", "provider_key"])
        .returning(table.c.id, table.c.account_id, table.c.provider_key)
    )
    result = session.execute(stmt, rows)
    return [(int(a), int(b), str(c)) for a, b, c in result.all()]


def _touch_conversations(session: Session, stored: Sequence[_Row]) -> None:
    """One UPDATE per conversation touched: unread count, last message, preview."""
    per_conv: dict[int, dict[str, Any]] = {}
    for row in stored:
        item = row.item
        entry = per_conv.setdefault(
            row.conversation_id,
            {
                "cid": row.conversation_id,
                "n_unread": 0,
                "last_at": item.occurred_at,
                "preview": "",
                "last_in": None,
            },
        )
        if item.occurred_at >= entry["last_at"]:
            entry["last_at"] = item.occurred_at
            entry["preview"] = preview_of(item.kind.value, item.text)
        if item.direction == Direction.INBOUND and item.kind != MessageKind.EVENT:
            entry["n_unread"] += 1
            if entry["last_in"] is None or item.occurred_at > entry["last_in"]:
                entry["last_in"] = item.occurred_at
    if not per_conv:
        return
    table: Table = Conversation.__table__  # type: ignore[assignment]
    n_unread: BindParameter[int] = bindparam("n_unread")
    # one executemany for every touched conversation (Core table: no ORM bulk rules)
    session.execute(
        update(table)
        .where(table.c.id == bindparam("cid"))
        .values(
            last_message_at=bindparam("last_at"),
            last_preview=bindparam("preview"),
            unread_count=table.c.unread_count + n_unread,
            last_inbound_at=func.coalesce(bindparam("last_in"), table.c.last_inbound_at),
            status=case((n_unread > 0, "open"), else_=table.c.status),
        ),
        list(per_conv.values()),
    )
    session.execute(
        update(Customer)
        .where(
            Customer.id.in_(
                select(Conversation.customer_id).where(
                    Conversation.id.in_(bindparam("cids", expanding=True))
                )
            )
        )
        .values(last_contact_at=utcnow()),
        {"cids": list(per_conv)},
    )
