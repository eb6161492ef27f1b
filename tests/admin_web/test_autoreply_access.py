"""Salespeople may try a message against the auto-reply engine but edit nothing."""

from __future__ import annotations

from tests.admin_web.people import Org
from tests.system import System


async def test_sales_tries_a_message_without_links_to_the_editors(
    console: System, org: Org
) -> None:
    http = await console.login("sales_a")
    try:
        resp = await http.get(f"{console.base}/autoreply/try", params={"text": "你好"})
        page = await resp.text()
    finally:
        await http.close()
    assert resp.status == 200
    assert 'href="/autoreply/rules"' not in page
    assert 'href="/autoreply/faq"' not in page
