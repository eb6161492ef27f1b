"""Chinese by default; each user may switch the console to English."""

from __future__ import annotations

from tests.admin_web.people import Org, csrf_of
from tests.system import System


async def test_console_is_chinese_by_default(console: System, org: Org) -> None:
    http = await console.login("sales_a")
    try:
        page = await (await http.get(f"{console.base}/inbox")).text()
    finally:
        await http.close()
    assert "收件箱" in page and 'lang="zh-CN"' in page


async def test_a_user_switches_to_english_and_it_sticks(console: System, org: Org) -> None:
    http = await console.login("sales_a")
    try:
        csrf = await csrf_of(http, f"{console.base}/inbox")
        await http.post(
            f"{console.base}/lang", data={"_csrf": csrf, "locale": "en", "next": "/inbox"}
        )
    finally:
        await http.close()
    again = await console.login("sales_a")
    other = await console.login("sales_b")
    try:
        assert ">Inbox" in await (await again.get(f"{console.base}/inbox")).text()
        assert "收件箱" in await (await other.get(f"{console.base}/inbox")).text()
    finally:
        await again.close()
        await other.close()


async def test_customer_page_shows_opt_out(console: System, org: Org) -> None:
    from conversations.consent import opt_out

    async with console.services.db.transaction() as s:
        await opt_out(s, channel="wecom", address="cust_sales_a", source="reply")
    http = await console.login("sales_a")
    try:
        page = await (await http.get(f"{console.base}/customers/{org.customers['sales_a']}")).text()
    finally:
        await http.close()
    assert "cust_sales_a" in page and "opt_out" in page
