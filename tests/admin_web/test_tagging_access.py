"""Tagging in the console respects who may see which customer (issue 9)."""

from __future__ import annotations

from sqlalchemy import select

from tagging.models import CustomerTag
from tagging.tags import create_group, create_tag
from tests.admin_web.people import Org, csrf_of
from tests.system import System


async def _tag(console: System) -> int:
    async with console.services.db.transaction() as s:
        group = await create_group(s, "意向")
        return (await create_tag(s, group, "询价")).id


async def _tagged(console: System, customer_id: int) -> list[int]:
    async with console.services.db.reading() as s:
        rows = await s.scalars(
            select(CustomerTag.tag_id).where(CustomerTag.customer_id == customer_id)
        )
        return list(rows.all())


async def _post_tag(console: System, username: str, customer_id: int, tag_id: int) -> int:
    http = await console.login(username)
    try:
        csrf = await csrf_of(http, f"{console.base}/me")
        resp = await http.post(
            f"{console.base}/tagging/customers/{customer_id}/tags",
            data={"_csrf": csrf, "tag_id": str(tag_id), "next": "/inbox"},
            allow_redirects=False,
        )
        return resp.status
    finally:
        await http.close()


async def test_sales_may_not_tag_another_salespersons_customer(console: System, org: Org) -> None:
    tag_id = await _tag(console)
    status = await _post_tag(console, "sales_a", org.customers["sales_b"], tag_id)
    assert status == 403
    assert await _tagged(console, org.customers["sales_b"]) == []


async def test_sales_tags_their_own_customer(console: System, org: Org) -> None:
    tag_id = await _tag(console)
    status = await _post_tag(console, "sales_a", org.customers["sales_a"], tag_id)
    assert status == 302
    assert await _tagged(console, org.customers["sales_a"]) == [tag_id]


async def test_manager_may_not_tag_another_teams_customer(console: System, org: Org) -> None:
    tag_id = await _tag(console)
    assert await _post_tag(console, "manager_a", org.customers["sales_b"], tag_id) == 403
    assert await _post_tag(console, "manager_a", org.customers["sales_a2"], tag_id) == 302


async def test_sales_reads_the_tag_catalogue_without_editing_forms(
    console: System, org: Org
) -> None:
    await _tag(console)
    http = await console.login("sales_a")
    try:
        resp = await http.get(f"{console.base}/tagging/tags")
        page = await resp.text()
    finally:
        await http.close()
    assert resp.status == 200
    assert "询价" in page
    assert 'action="/tagging/groups"' not in page
    assert 'action="/tagging/rules"' not in page
