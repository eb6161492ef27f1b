"""The customer page as bot.runtime wires it: tags (editable), RFM/ABC, broadcasts
received, merging a duplicate; and the inbox filter by tag."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from broadcasts.models import Broadcast, BroadcastRecipient, BroadcastRun, RecipientStatus
from conversations.models import AuditEntry, Conversation, Customer
from tagging.models import CustomerProfile, CustomerTag
from tagging.tags import Why, create_group, create_tag, tag_customer
from tests.admin_web.people import Org, csrf_of
from tests.system import System


async def _page(console: System, username: str, path: str) -> str:
    http = await console.login(username)
    try:
        return await (await http.get(console.base + path)).text()
    finally:
        await http.close()


async def _tag(console: System, name: str, group: str = "意向") -> int:
    async with console.services.db.transaction() as s:
        g = await create_group(s, group)
        return (await create_tag(s, g, name)).id


async def test_customer_page_lists_the_customers_tags(console: System, org: Org) -> None:
    vip = await _tag(console, "VIP")
    async with console.services.db.transaction() as s:
        await tag_customer(s, org.customers["sales_a"], vip, Why("manual", reason="大单"))
    page = await _page(console, "sales_a", f"/customers/{org.customers['sales_a']}")
    assert f'data-tag="{vip}"' in page
    assert "意向/VIP" in page


async def test_salesperson_tags_a_customer_from_the_customer_page(
    console: System, org: Org
) -> None:
    vip = await _tag(console, "VIP")
    customer = org.customers["sales_a"]
    http = await console.login("sales_a")
    try:
        csrf = await csrf_of(http, f"{console.base}/customers/{customer}")
        resp = await http.post(
            f"{console.base}/tagging/customers/{customer}/tags",
            data={"_csrf": csrf, "tag_id": str(vip), "next": f"/customers/{customer}"},
        )
        assert resp.url.path == f"/customers/{customer}"
        assert f'data-tag="{vip}"' in await resp.text()
    finally:
        await http.close()
    async with console.services.db.reading() as s:
        assert await s.get(CustomerTag, (customer, vip)) is not None


async def test_unscored_customer_says_scores_come_later(console: System, org: Org) -> None:
    page = await _page(console, "sales_a", f"/customers/{org.customers['sales_a']}")
    assert "尚未评分" in page


async def test_scored_customer_shows_rfm_and_abc_with_their_figures(
    console: System, org: Org
) -> None:
    async with console.services.db.transaction() as s:
        s.add(
            CustomerProfile(
                customer_id=org.customers["sales_a"],
                rfm_r=5,
                rfm_f=3,
                rfm_m=4,
                abc_class="A",
                recency_days=2,
                frequency=6,
                monetary_cents=1_234_500,
                value_computed_at=datetime(2026, 11, 21, 2, 0, tzinfo=UTC),
            )
        )
    page = await _page(console, "sales_a", f"/customers/{org.customers['sales_a']}")
    assert '<dd class="abc">A</dd>' in page
    assert "最近一次互动在 2 天前" in page
    assert "订单金额 ¥12,345.00" in page


async def test_inbox_filter_by_tag_keeps_the_tagged_customers_conversations(
    console: System, org: Org
) -> None:
    vip = await _tag(console, "VIP")
    async with console.services.db.transaction() as s:
        await tag_customer(s, org.customers["sales_b"], vip, Why("manual"))
    everything = await _page(console, "admin", "/inbox")
    filtered = await _page(console, "admin", f"/inbox?tag={vip}")
    assert f'<option value="{vip}"' in everything
    assert everything.count("data-conversation=") == 4
    assert filtered.count("data-conversation=") == 1
    assert f'data-conversation="{org.conversations["sales_b"]}"' in filtered


async def test_broadcasts_received_show_each_copys_outcome(console: System, org: Org) -> None:
    async with console.services.db.transaction() as s:
        broadcast = Broadcast(name="双十一促销", audience={"kind": "customers"})
        s.add(broadcast)
        await s.flush()
        run = BroadcastRun(broadcast_id=broadcast.id, fire_time=datetime(2026, 11, 11, tzinfo=UTC))
        s.add(run)
        await s.flush()
        s.add(
            BroadcastRecipient(
                run_id=run.id,
                customer_id=org.customers["sales_a"],
                status=RecipientStatus.SKIPPED.value,
                skip_reason="suppressed",
            )
        )
    page = await _page(console, "sales_a", f"/customers/{org.customers['sales_a']}")
    other = await _page(console, "sales_a2", f"/customers/{org.customers['sales_a2']}")
    assert "双十一促销" in page
    assert "已跳过</span> (免打扰)" in page
    assert f'href="/broadcasts/{broadcast.id}"' not in page  # sales may not open campaigns
    assert "双十一促销" not in other


async def test_manager_merges_a_duplicate_and_the_merge_is_audited(
    console: System, org: Org
) -> None:
    winner, loser = org.customers["sales_a"], org.customers["sales_a2"]
    async with console.services.db.transaction() as s:
        for cid in (winner, loser):
            customer = await s.get(Customer, cid)
            assert customer is not None
            customer.phone = "+8613800138000"
    http = await console.login("manager_a")
    try:
        page_url = f"{console.base}/customers/{winner}"
        page = await (await http.get(page_url)).text()
        assert f'name="other" value="{loser}"' in page  # suggested: same phone
        resp = await http.post(
            f"{page_url}/merge",
            data={"_csrf": await csrf_of(http, page_url), "other": str(loser), "reason": "同一人"},
        )
        assert resp.url.path == f"/customers/{winner}"
    finally:
        await http.close()
    async with console.services.db.reading() as s:
        moved = await s.get(Conversation, org.conversations["sales_a2"])
        assert moved is not None and moved.customer_id == winner
        merged = await s.get(Customer, loser)
        assert merged is not None and merged.merged_into_id == winner
        entry = (
            await s.scalars(select(AuditEntry).where(AuditEntry.action == "customer.merge"))
        ).one()
        assert entry.actor_id == org.staff["manager_a"]


async def test_manager_may_not_merge_a_customer_of_another_team(console: System, org: Org) -> None:
    winner, foreign = org.customers["sales_a"], org.customers["sales_b"]
    http = await console.login("manager_a")
    try:
        page_url = f"{console.base}/customers/{winner}"
        resp = await http.post(
            f"{page_url}/merge",
            data={"_csrf": await csrf_of(http, page_url), "other": str(foreign)},
            allow_redirects=False,
        )
        assert resp.status == 403
    finally:
        await http.close()
    async with console.services.db.reading() as s:
        untouched = await s.get(Customer, foreign)
        assert untouched is not None and untouched.merged_into_id is None


async def test_salesperson_sees_no_merge_form(console: System, org: Org) -> None:
    page = await _page(console, "sales_a", f"/customers/{org.customers['sales_a']}")
    assert "/merge" not in page


async def test_a_merged_customers_page_points_at_the_survivor(console: System, org: Org) -> None:
    from tagging.merge import merge_customers

    winner, loser = org.customers["sales_a"], org.customers["unassigned"]
    async with console.services.db.transaction() as s:
        await merge_customers(s, winner, loser, actor_id=None)
    page = await _page(console, "admin", f"/customers/{loser}")
    assert f'class="error merged-into">已合并到 <a href="/customers/{winner}">' in page
