"""The console in a real browser (issue 9's done-when): login, a message arriving live,
replying, searching as a manager, a salesperson refused another's conversation (page and
API), and the screenshots the README shows."""

from __future__ import annotations

import aiohttp
import pytest

from channels.wecom.simulator import post_callback, sign_callback, text_message_xml
from tests.admin_web.people import Org, api_token, bearer
from tests.browser.conftest import SCREENSHOTS, Ui
from tests.browser.showcase import seed_showcase
from tests.system import System, eventually

pytestmark = pytest.mark.browser


async def test_login_lands_on_the_inbox_in_chinese(ui: Ui, org: Org) -> None:
    page = await ui.login("sales_a")
    assert page.url.endswith("/inbox")
    assert await page.locator("nav").get_by_text("收件箱").count() == 1


async def test_a_customer_message_appears_live_with_its_badge(
    ui: Ui, console: System, org: Org
) -> None:
    page = await ui.login("sales_a")
    await page.evaluate("window.__noReload = true")
    await page.wait_for_selector("body[data-live-connected='1']")
    signed = sign_callback(
        console.wecom, text_message_xml(console.wecom, "zhangsan", "你好，想了解一下价格", 4242)
    )
    async with aiohttp.ClientSession() as http:
        assert (await post_callback(http, console.callback_url(), signed))[0] == 200
    item = page.locator(".conversations li", has_text="你好，想了解一下价格")
    await item.wait_for(timeout=10_000)
    assert await item.locator(".unread-count").inner_text() == "1"
    assert await page.evaluate("window.__noReload") is True  # updated without a reload
    assert int(await page.locator("#unread-total").inner_text()) >= 1


# the page's audio and notification APIs, recorded instead of played (headless, no desktop)
RECORD_ALERTS = """
window.__beeps = 0; window.__notes = [];
window.AudioContext = function () { window.__beeps += 1; throw new Error("recorded"); };
window.Notification = function (title, options) { window.__notes.push(title + " | " + options.body); };
window.Notification.permission = "granted";
window.Notification.requestPermission = function () { return Promise.resolve("granted"); };
Object.defineProperty(document, "hidden", { get: function () { return true; } });
"""


async def test_alerts_sound_and_notify_a_new_customer_message(
    ui: Ui, console: System, org: Org
) -> None:
    page = await ui.login("sales_a")
    await page.context.add_init_script(RECORD_ALERTS)
    await page.goto(ui.url("/inbox"))
    await page.check("#alerts")  # the salesperson turns alerts on (kept in localStorage)
    await page.wait_for_selector("body[data-live-connected='1']")
    signed = sign_callback(
        console.wecom, text_message_xml(console.wecom, "zhangsan", "请问今天能发货吗", 4343)
    )
    async with aiohttp.ClientSession() as http:
        assert (await post_callback(http, console.callback_url(), signed))[0] == 200

    async def notified() -> bool:
        return bool(await page.evaluate("window.__notes.length"))

    await eventually(notified)
    assert await page.evaluate("window.__beeps") >= 1
    assert "请问今天能发货吗" in (await page.evaluate("window.__notes"))[0]


async def test_alerts_stay_silent_when_turned_off(ui: Ui, console: System, org: Org) -> None:
    page = await ui.login("sales_a")
    await page.context.add_init_script(RECORD_ALERTS)
    await page.goto(ui.url("/inbox"))
    await page.wait_for_selector("body[data-live-connected='1']")
    signed = sign_callback(console.wecom, text_message_xml(console.wecom, "zhangsan", "在吗", 4344))
    async with aiohttp.ClientSession() as http:
        assert (await post_callback(http, console.callback_url(), signed))[0] == 200
    await page.locator(".conversations li", has_text="在吗").wait_for(timeout=10_000)
    assert await page.evaluate("[window.__beeps, window.__notes.length]") == [0, 0]


async def test_reply_with_ctrl_enter_reaches_the_customer(
    ui: Ui, console: System, org: Org
) -> None:
    page = await ui.login("sales_a")
    await page.goto(ui.url(f"/conversations/{org.conversations['sales_a']}"))
    await page.fill("textarea[name=text] >> nth=0", "您好，报价单已发您邮箱")
    await page.press("textarea[name=text] >> nth=0", "Control+Enter")
    await page.locator(".timeline .msg.out", has_text="您好，报价单已发您邮箱").wait_for()

    async def delivered() -> bool:
        return any(m.content == "您好，报价单已发您邮箱" for m in console.sim.sent)

    await eventually(delivered)


async def test_j_and_k_move_through_the_inbox(ui: Ui, org: Org) -> None:
    page = await ui.login("admin")
    await page.keyboard.press("j")
    await page.keyboard.press("j")
    await page.keyboard.press("k")
    selected = page.locator(".conversations li.selected")
    assert await selected.count() == 1
    first = await page.locator(".conversations li").first.get_attribute("data-conversation")
    assert await selected.get_attribute("data-conversation") == first


async def test_manager_searches_the_history(ui: Ui, console: System) -> None:
    from tests.admin_web.people import seed_org

    await seed_org(console, {"sales_a2": ["上次说的价格还有优惠吗", "发票抬头写公司名"]})
    page = await ui.login("manager_a")
    await page.goto(ui.url("/search"))
    await page.fill("input[name=q]", "价格 优惠")
    await page.click("#search-form button")
    hits = page.locator(".hits li.hit")
    await hits.first.wait_for()
    assert await hits.count() == 1
    assert "上次说的价格还有优惠吗" in await hits.first.inner_text()


async def test_sales_is_refused_another_salespersons_conversation(
    ui: Ui, console: System, org: Org
) -> None:
    page = await ui.login("sales_a")
    response = await page.goto(ui.url(f"/conversations/{org.conversations['sales_b']}"))
    assert response is not None and response.status == 403
    token = await api_token(console, "sales_a")
    async with aiohttp.ClientSession() as http:
        api = await http.get(
            f"{console.base}/api/v1/conversations/{org.conversations['sales_b']}/messages",
            headers=bearer(token),
        )
        assert api.status == 403


async def test_screenshots_of_the_inbox_and_the_dashboard(
    ui: Ui, console: System, org: Org
) -> None:
    await seed_showcase(console, org)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = await ui.login("admin")
    await page.goto(ui.url("/inbox"))
    await page.screenshot(path=str(SCREENSHOTS / "inbox.png"), full_page=True)
    await page.goto(ui.url("/dashboard"))
    await page.locator("svg.chart").first.wait_for()
    await page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)
    phone = await ui.login("sales_a", mobile=True)
    await phone.goto(ui.url(f"/conversations/{org.conversations['sales_a']}"))
    await phone.screenshot(path=str(SCREENSHOTS / "conversation-mobile.png"), full_page=True)
    assert (SCREENSHOTS / "inbox.png").stat().st_size > 10_000
    assert (SCREENSHOTS / "dashboard.png").stat().st_size > 10_000
