"""The rest of issue 9's browser done-when: a salesperson tags a customer from the
customer page (and finds them with the inbox tag filter), and a marketer runs a broadcast
and watches its progress without reloading."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from conversations.models import ChannelAccount
from tagging.tags import create_group, create_tag
from tests.admin_web.people import Org
from tests.browser.conftest import Ui
from tests.system import System, eventually

pytestmark = pytest.mark.browser


async def test_salesperson_tags_a_customer_and_filters_the_inbox_by_it(
    ui: Ui, console: System, org: Org
) -> None:
    async with console.services.db.transaction() as s:
        group = await create_group(s, "意向")
        vip = await create_tag(s, group, "高意向")
        vip_id = vip.id
    customer = org.customers["sales_a"]
    page = await ui.login("sales_a")
    await page.goto(ui.url(f"/customers/{customer}"))
    await page.select_option("form.add-tag select[name=tag_id]", str(vip_id))
    await page.click("form.add-tag button")
    await page.locator(f'.customer-tags li[data-tag="{vip_id}"]').wait_for()
    assert "意向/高意向" in await page.locator(".customer-tags").inner_text()

    await page.goto(ui.url("/inbox"))
    async with page.expect_navigation():  # the filters submit on change
        await page.select_option(".filters select[name=tag]", str(vip_id))
    rows = page.locator(".conversations li[data-conversation]")
    assert await rows.count() == 1
    assert await rows.first.get_attribute("data-conversation") == str(org.conversations["sales_a"])


def _zone_where_it_is_noon(now: datetime) -> str:
    """A fixed-offset zone in which `now` falls between 12:00 and 13:00, so the
    default marketing hours (08:00–21:00) never hold the broadcast back."""
    offset = 12 - now.hour  # −11 … +12 hours
    return f"Etc/GMT{-offset:+d}"  # POSIX sign: Etc/GMT-8 is UTC+8


async def test_marketer_runs_a_broadcast_and_watches_it_complete(
    ui: Ui, console: System, org: Org
) -> None:
    async with console.services.db.transaction() as s:
        account = await s.get(ChannelAccount, console.wecom_account_id)
        assert account is not None
        account.config = {**account.config, "timezone": _zone_where_it_is_noon(datetime.now(UTC))}
    audience = [org.customers["sales_a"], org.customers["sales_b"]]
    page = await ui.login("marketer")
    await page.goto(ui.url("/broadcasts/new"))
    await page.fill("input[name=name]", "新品到店通知")
    await page.fill("input[name=customer_ids]", ", ".join(map(str, audience)))
    await page.fill("input[name=channel_order]", str(console.wecom_account_id))
    await page.fill("textarea[name=wecom_text]", "{customer_name}您好，新品已到店")
    await page.click("form[action='/broadcasts'] button[type=submit]")
    await page.wait_for_url("**/broadcasts/*")
    watched: list[str] = []
    page.on("request", lambda r: watched.append(r.url) if "partial=runs" in r.url else None)
    await page.click("form[action$='/submit'] button")
    await page.wait_for_url("**/broadcasts/*")
    await page.evaluate("window.__noReload = true")
    # the run appears, sends and completes on this page without a reload
    run = page.locator("#runs .run").first
    await run.wait_for(timeout=20_000)
    await page.locator("#runs[data-runs-live='0'] .run").first.wait_for(timeout=30_000)
    assert "2/2" in await run.inner_text()
    assert await page.locator("#runs progress").first.get_attribute("value") == "100"
    assert await page.evaluate("window.__noReload") is True
    assert watched  # the progress came from the page re-fetching its runs

    async def delivered() -> bool:
        return sum("新品已到店" in m.content for m in console.sim.sent) == 2

    await eventually(delivered)
