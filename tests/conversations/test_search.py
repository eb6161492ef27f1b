"""Chinese full-text search over the history, on SQLite (FTS5) and PostgreSQL (tsvector)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select, update

from conversations.access import AccessDenied, Role, Viewer
from conversations.actions import record_inbound
from conversations.db import Database
from conversations.models import ChannelAccount, Conversation, Message, StaffUser
from conversations.search import (
    SearchFilter,
    index_backlog,
    search_messages,
    tokenise_for_index,
    tokenise_query,
)
from conversations.types import InboundMessage, MessageKind

ADMIN = Viewer(staff_id=0, role=Role.ADMIN)


async def _seed(db: Database, texts: dict[str, list[str]]) -> dict[str, int]:
    """One conversation per customer id with the given messages, all indexed."""
    async with db.transaction() as s:
        account = ChannelAccount(kind="wecom.app", name="app", callback_token="t")
        s.add(account)
        await s.flush()
        for n, (customer, lines) in enumerate(texts.items()):
            await record_inbound(
                s,
                account,
                [
                    InboundMessage(
                        provider_key=f"{customer}-{i}",
                        external_id=customer,
                        kind=MessageKind.TEXT,
                        text=line,
                        occurred_at=datetime(2026, 11, 1 + n, 10, i, tzinfo=UTC),
                    )
                    for i, line in enumerate(lines)
                ],
            )
        # handled by the pipeline (whose own handler would index them), then the backlog
        await s.execute(update(Message).values(processed_at=datetime.now(UTC)))
        await index_backlog(s)
        rows = (await s.execute(select(Conversation.id, Conversation.identity_id))).all()
    out: dict[str, int] = {}
    async with db.reading() as s:
        for conv_id, _ in rows:
            conv = await s.get(Conversation, conv_id)
            assert conv is not None
            from conversations.models import Identity

            ident = await s.get(Identity, conv.identity_id)
            assert ident is not None
            out[ident.external_id] = conv_id
    return out


def test_jieba_words_are_indexed_with_their_parts() -> None:
    words = tokenise_for_index("中华人民共和国的优惠价格")
    assert {"中华", "人民", "共和国", "优惠", "价格"} <= set(words)


def test_a_query_is_cut_into_words() -> None:
    assert tokenise_query("价格优惠") == ["价格", "优惠"]


async def test_two_word_search_finds_only_messages_with_both(db: Database) -> None:
    await _seed(db, {"c1": ["请问价格有优惠吗", "价格太贵了", "有什么优惠活动"]})
    async with db.reading() as s:
        hits = await search_messages(s, ADMIN, SearchFilter(query="价格 优惠"))
    assert [h.text for h in hits] == ["请问价格有优惠吗"]


async def test_results_come_newest_first(db: Database) -> None:
    await _seed(db, {"c1": ["第一次问价格"], "c2": ["第二次问价格"]})
    async with db.reading() as s:
        hits = await search_messages(s, ADMIN, SearchFilter(query="价格"))
    assert [h.text for h in hits] == ["第二次问价格", "第一次问价格"]


async def test_search_filters_by_date(db: Database) -> None:
    await _seed(db, {"c1": ["十一月一日问价格"], "c2": ["十一月二日问价格"]})
    async with db.reading() as s:
        hits = await search_messages(
            s,
            ADMIN,
            SearchFilter(query="价格", since=datetime(2026, 11, 2, tzinfo=UTC)),
        )
    assert [h.text for h in hits] == ["十一月二日问价格"]


async def test_search_stays_within_the_viewers_scope(db: Database) -> None:
    convs = await _seed(db, {"mine": ["我的客户问价格"], "theirs": ["别人的客户问价格"]})
    async with db.transaction() as s:
        me, other = (
            StaffUser(username="me", display_name="me", password_hash="x", role="sales"),
            StaffUser(username="o", display_name="o", password_hash="x", role="sales"),
        )
        s.add_all([me, other])
        await s.flush()
        for key, owner in (("mine", me), ("theirs", other)):
            conv = await s.get(Conversation, convs[key])
            assert conv is not None
            conv.assignee_id = owner.id
        me_id = me.id
    async with db.reading() as s:
        hits = await search_messages(s, Viewer(me_id, Role.SALES), SearchFilter(query="价格"))
        by_staff = await search_messages(s, ADMIN, SearchFilter(query="价格", staff_id=me_id))
    assert [h.text for h in hits] == ["我的客户问价格"]
    assert [h.text for h in by_staff] == ["我的客户问价格"]


async def test_marketers_cannot_search_conversations(db: Database) -> None:
    async with db.reading() as s:
        try:
            await search_messages(s, Viewer(1, Role.MARKETER), SearchFilter(query="价格"))
        except AccessDenied:
            return
    raise AssertionError("marketer searched private conversations")


async def test_reindexing_a_message_replaces_its_words(db: Database) -> None:
    await _seed(db, {"c1": ["价格"]})
    async with db.transaction() as s:
        from conversations.search import index_documents

        mid = await s.scalar(select(Message.id))
        assert mid is not None
        await index_documents(s, [(mid, ["折扣"])])
    async with db.reading() as s:
        assert await search_messages(s, ADMIN, SearchFilter(query="价格")) == []
        assert len(await search_messages(s, ADMIN, SearchFilter(query="折扣"))) == 1


async def test_catch_up_indexes_messages_written_outside_the_pipeline(db: Database) -> None:
    from conversations.actions import queue_outbound
    from conversations.search import catch_up
    from conversations.types import Purpose

    convs = await _seed(db, {"c1": ["你好"]})
    async with db.transaction() as s:
        conv = await s.get(Conversation, convs["c1"])
        assert conv is not None
        await queue_outbound(s, conv, text="这是报价单", purpose=Purpose.REPLY, idempotency_key="k")
    assert await catch_up(db) == 1
    async with db.reading() as s:
        assert [h.text for h in await search_messages(s, ADMIN, SearchFilter(query="报价单"))] == [
            "这是报价单"
        ]


async def test_catch_up_leaves_unhandled_inbound_messages_to_the_pipeline(db: Database) -> None:
    from conversations.search import catch_up

    convs = await _seed(db, {"c1": ["你好"]})
    async with db.transaction() as s:
        conv = await s.get(Conversation, convs["c1"])
        assert conv is not None
        account = await s.get(ChannelAccount, conv.account_id)
        assert account is not None
        waiting = InboundMessage(
            provider_key="new",
            external_id="c1",
            kind=MessageKind.TEXT,
            text="还没处理的报价问题",
            occurred_at=datetime(2026, 11, 2, tzinfo=UTC),
        )
        await record_inbound(s, account, [waiting])
    assert await catch_up(db) == 0
    async with db.transaction() as s:
        await s.execute(update(Message).values(processed_at=datetime.now(UTC)))
    assert await catch_up(db) == 1
