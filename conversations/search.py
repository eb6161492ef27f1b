"""Full-text search over the whole message history in Chinese (issue 9).

Text is cut into words with jieba before it reaches the database, so neither engine
needs a Chinese parser: SQLite indexes the space-joined words with FTS5 (external
content table `message_fts`, created by the migration), PostgreSQL stores them as a
tsvector built with `array_to_tsvector` (lexemes taken as-is) under a GIN index.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import jieba
from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    Text,
    bindparam,
    column,
    func,
    select,
    table,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY, TSVECTOR
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from .access import AccessDenied, Role, Viewer, conversation_scope
from .db import Base, Database
from .handlers import MessageContext
from .models import ChannelAccount, Conversation, Customer, Message, StaffUser

# the FTS5 table and the shadow tables SQLite keeps for it: created by the migration,
# invisible to the models (bot.schema.include_name leaves them out of comparisons)
FTS_TABLE = "message_fts"
UNMANAGED_TABLES = frozenset(
    {FTS_TABLE, *(f"{FTS_TABLE}_{s}" for s in ("data", "idx", "docsize", "config", "content"))}
)
MAX_QUERY_WORDS = 8
_SPLIT = re.compile(r"[^\w]+", re.UNICODE)


class SearchDocument(Base):
    """One message's words, as jieba cut them; what the full-text index is built on."""

    __tablename__ = "message_search"
    __table_args__ = (Index("ix_message_search_tsv", "tsv", postgresql_using="gin"),)
    message_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"),
        ForeignKey("messages.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    )
    tokens: Mapped[str] = mapped_column(Text, default="")
    # PostgreSQL only; NULL on SQLite where message_fts indexes `tokens`
    tsv: Mapped[str | None] = mapped_column(
        Text().with_variant(TSVECTOR(), "postgresql"), nullable=True
    )


def _normalise(words: Iterable[str]) -> list[str]:
    # the same split FTS5's unicode61 tokenizer makes, so a word is always one index term
    out: list[str] = []
    for word in words:
        for part in _SPLIT.split(word.lower()):
            if part and part != "_":
                out.append(part)
    return out


def tokenise_for_index(content: str) -> list[str]:
    """Words to index: jieba's search mode also emits the shorter words inside long ones."""
    return list(dict.fromkeys(_normalise(jieba.cut_for_search(content))))


def tokenise_query(query: str) -> list[str]:
    """Words a search must all match (AND), at most MAX_QUERY_WORDS."""
    words: list[str] = []
    for chunk in query.split():
        words.extend(_normalise(jieba.cut(chunk)))
    return list(dict.fromkeys(words))[:MAX_QUERY_WORDS]


async def index_documents(session: AsyncSession, docs: Sequence[tuple[int, Sequence[str]]]) -> None:
    """Insert or replace the index rows of (message id, words) pairs."""
    if not docs:
        return
    dialect = session.get_bind().dialect.name
    doc_table = SearchDocument.__table__
    if dialect == "postgresql":
        for message_id, words in docs:
            clean = [w for w in words if w]
            tsv = (
                func.array_to_tsvector(bindparam("w", clean, type_=ARRAY(Text)))
                if clean
                else func.to_tsvector("simple", "")
            )
            stmt = pg_insert(doc_table).values(  # type: ignore[arg-type]  # a Table at run time
                message_id=message_id, tokens=" ".join(clean), tsv=tsv
            )
            await session.execute(
                stmt.on_conflict_do_update(
                    index_elements=["message_id"],
                    set_={"tokens": stmt.excluded.tokens, "tsv": stmt.excluded.tsv},
                )
            )
        return
    rows = [{"message_id": mid, "tokens": " ".join(words)} for mid, words in docs]
    stmt_l = sqlite_insert(doc_table)  # type: ignore[arg-type]  # a Table at run time
    # the triggers from the migration keep message_fts in step with these rows
    await session.execute(
        stmt_l.on_conflict_do_update(
            index_elements=["message_id"], set_={"tokens": stmt_l.excluded.tokens}
        ),
        rows,
    )


async def index_message_ids(session: AsyncSession, message_ids: Sequence[int]) -> int:
    """Index the given messages (inbound or outbound); returns how many had text."""
    if not message_ids:
        return 0
    rows = (
        await session.execute(select(Message.id, Message.text).where(Message.id.in_(message_ids)))
    ).all()
    docs = [(mid, tokenise_for_index(body)) for mid, body in rows if body]
    await index_documents(session, docs)
    return len(docs)


async def index_message(ctx: MessageContext) -> None:
    """Index one handled message (idempotent upsert); the pipeline uses `index_batch`."""
    await index_batch([ctx])


async def index_batch(contexts: Sequence[MessageContext]) -> None:
    """Pipeline batch handler: keep the index current as messages arrive, one upsert for
    the whole batch."""
    docs = [(c.message.id, tokenise_for_index(c.message.text)) for c in contexts if c.message.text]
    if docs:
        await index_documents(contexts[0].session, docs)


async def index_backlog(
    session: AsyncSession, window: int = 50_000, batch: int = 500, *, handled_only: bool = False
) -> int:
    """Index recent messages that have no index row yet (outbound replies, broadcasts,
    auto-replies, anything written outside the pipeline). `handled_only`: leave inbound
    messages the pipeline has not handled yet to its own handler."""
    top = await session.scalar(select(func.max(Message.id)))
    if top is None:
        return 0
    missing = (
        await session.scalars(
            select(Message.id)
            .where(
                Message.id > top - window,
                Message.text != "",
                ~select(SearchDocument.message_id)
                .where(SearchDocument.message_id == Message.id)
                .exists(),
            )
            .where(
                (Message.direction != "in") | Message.processed_at.is_not(None)
                if handled_only
                else true()
            )
            .order_by(Message.id)
            .limit(batch)
        )
    ).all()
    return await index_message_ids(session, list(missing))


@dataclass(frozen=True)
class SearchFilter:
    query: str
    staff_id: int | None = None  # the salesperson the conversation is assigned to
    channel_kind: str | None = None
    account_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 20
    offset: int = 0


@dataclass(frozen=True)
class SearchHit:
    message_id: int
    conversation_id: int
    customer_name: str
    account_name: str
    account_kind: str
    assignee_name: str | None
    direction: str
    text: str
    occurred_at: datetime


def _fts5_query(words: Sequence[str]) -> str:
    return " AND ".join('"' + w.replace('"', '""') + '"' for w in words)


def _tsquery(words: Sequence[str]) -> str:
    return " & ".join("'" + w.replace("\\", "\\\\").replace("'", "''") + "'" for w in words)


def may_search(viewer: Viewer) -> bool:
    return viewer.role != Role.MARKETER


async def search_messages(
    session: AsyncSession, viewer: Viewer, flt: SearchFilter
) -> list[SearchHit]:
    """Messages containing every word of the query, newest first, within the viewer's scope."""
    if not may_search(viewer):
        raise AccessDenied("marketers do not read private conversations")
    words = tokenise_query(flt.query)
    if not words:
        return []
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        matched = select(SearchDocument.message_id.label("mid")).where(
            text("message_search.tsv @@ CAST(:tsq AS tsquery)").bindparams(tsq=_tsquery(words))
        )
    else:
        fts = table(FTS_TABLE, column("rowid"))
        matched = select(fts.c.rowid.label("mid")).where(
            text(f"{FTS_TABLE} MATCH :fts").bindparams(fts=_fts5_query(words))
        )
    hits = matched.subquery("hits")
    assignee = StaffUser.__table__.alias("assignee")
    query = (
        select(
            Message.id,
            Message.conversation_id,
            Customer.display_name,
            ChannelAccount.name,
            ChannelAccount.kind,
            assignee.c.display_name,
            Message.direction,
            Message.text,
            Message.occurred_at,
        )
        .join(hits, hits.c.mid == Message.id)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .join(Customer, Customer.id == Conversation.customer_id)
        .join(ChannelAccount, ChannelAccount.id == Message.account_id)
        .outerjoin(assignee, assignee.c.id == Conversation.assignee_id)
        .where(conversation_scope(viewer))
        # SQLite: ordering by the FTS rowid lets FTS5 hand rows over newest first, so the
        # join stops after a page instead of sorting every match (same ids as messages)
        .order_by(hits.c.mid.desc() if dialect == "sqlite" else Message.id.desc())
        .limit(flt.limit)
        .offset(flt.offset)
    )
    if flt.staff_id is not None:
        query = query.where(Conversation.assignee_id == flt.staff_id)
    if flt.channel_kind:
        query = query.where(ChannelAccount.kind.startswith(flt.channel_kind))
    if flt.account_id is not None:
        query = query.where(Message.account_id == flt.account_id)
    if flt.since is not None:
        query = query.where(Message.occurred_at >= flt.since)
    if flt.until is not None:
        query = query.where(Message.occurred_at < flt.until)
    return [SearchHit(*row) for row in (await session.execute(query)).all()]


async def catch_up(db: Database, batch: int = 500) -> int:
    """Index everything `index_backlog` finds, a batch per transaction; for a periodic job.
    Inbound messages still waiting for the pipeline are its to index: under a burst of
    callbacks they would otherwise be tokenised twice, competing with acknowledgements."""
    total = 0
    while True:
        async with db.transaction() as s:
            done = await index_backlog(s, batch=batch, handled_only=True)
        total += done
        if done < batch:
            return total
