"""The WeCom chat sidebar in Chromium, with a stand-in for the WeCom JS bridge served in
place of the JS-SDK files: it answers agentConfig / getContext / getCurExternalContact
and records sendChatMessage calls."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from channels.wecom.jsapi import jsapi_signature
from channels.wecom.models import FollowRelation
from conversations.models import StaffUser
from conversations.notes import QuickReply
from tagging.models import CustomerTag
from tagging.tags import Why, create_group, create_tag, tag_customer
from tests.admin_web.people import Org
from tests.browser.conftest import Ui
from tests.system import eventually

EXTERNAL = "wmSidebarCustomer0001"
# the stand-in bridge: every call is recorded in window.__wecomCalls
BRIDGE = """
window.__wecomCalls = [];
(function () {
  const answers = {
    getContext: { err_msg: "getContext:ok", entry: "single_chat_tools" },
    getCurExternalContact: { err_msg: "getCurExternalContact:ok", userId: "EXT_ID" },
    sendChatMessage: { err_msg: "sendChatMessage:ok" },
  };
  window.wx = window.ww = {
    config(c) { window.__wecomCalls.push(["config", c]); },
    agentConfig(c) {
      window.__wecomCalls.push(["agentConfig", {
        corpid: c.corpid, agentid: c.agentid, timestamp: c.timestamp,
        nonceStr: c.nonceStr, signature: c.signature }]);
      setTimeout(() => c.success({ errMsg: "agentConfig:ok" }), 0);
    },
    invoke(name, args, cb) {
      window.__wecomCalls.push([name, args]);
      setTimeout(() => cb(answers[name] || { err_msg: name + ":fail" }), 0);
    },
  };
})();
""".replace("EXT_ID", EXTERNAL)


async def _seed(ui: Ui, org: Org) -> dict[str, int]:
    console = ui.console
    async with console.services.db.transaction() as s:
        await s.execute(
            update(StaffUser)
            .where(StaffUser.id == org.staff["sales_a"])
            .values(wecom_userid="zhangsan")
        )
        customer = org.customers["sales_a"]
        s.add(
            FollowRelation(
                account_id=console.wecom_account_id,
                customer_id=customer,
                external_userid=EXTERNAL,
                userid="zhangsan",
            )
        )
        group = await create_group(s, "意向")
        vip = await create_tag(s, group, "VIP")
        price = await create_tag(s, group, "询价")
        await tag_customer(s, customer, vip.id, Why("manual"))
        s.add(QuickReply(shortcut="bj", title="报价说明", body="您好，我们的报价单已发您邮箱。"))
        await s.flush()
    return {"customer": customer, "vip": vip.id, "price": price.id}


async def _open_sidebar(ui: Ui, username: str) -> Any:
    page = await ui.login(username, mobile=True)
    context = page.context

    async def serve_bridge(route: Any) -> None:
        await route.fulfill(status=200, content_type="application/javascript", body=BRIDGE)

    async def serve_empty(route: Any) -> None:
        await route.fulfill(status=200, content_type="application/javascript", body="")

    await context.route("https://res.wx.qq.com/**", serve_bridge)
    await context.route("https://open.work.weixin.qq.com/**", serve_empty)
    await page.goto(ui.url("/sidebar/"))
    return page


async def test_salesperson_sees_tags_and_history_edits_a_tag_and_inserts_a_quick_reply(
    ui: Ui, org: Org
) -> None:
    seeded = await _seed(ui, org)
    page = await _open_sidebar(ui, "sales_a")

    # the customer's card: the tag and the chat history
    await page.wait_for_selector("#tags li:has-text('意向/VIP')")
    await page.wait_for_selector("#timeline li:has-text('你好，我是sales_a的客户')")

    # agentConfig was called with a signature valid for this page and the app's ticket
    calls = await page.evaluate("window.__wecomCalls")
    agent = next(args for name, args in calls if name == "agentConfig")
    ticket = ui.console.sim.jsapi.current_ticket(ui.console.wecom.corp_id, agent["agentid"])
    assert ticket is not None
    assert agent["signature"] == jsapi_signature(
        ticket, agent["nonceStr"], agent["timestamp"], ui.url("/sidebar/")
    )

    # edit a tag: add 询价 (意向 is not single-select, so VIP stays)
    await page.select_option("#tag-add", str(seeded["price"]))
    await page.click("#tag-add-btn")
    await page.wait_for_selector("#tags li:has-text('意向/询价')")

    async def tagged() -> set[int]:
        async with ui.console.services.db.reading() as s:
            rows = await s.scalars(
                select(CustomerTag.tag_id).where(CustomerTag.customer_id == seeded["customer"])
            )
            return set(rows)

    assert await eventually(tagged) == {seeded["vip"], seeded["price"]}

    # insert a quick reply found by a Chinese search
    await page.fill("#lib-q", "报价")
    await page.wait_for_selector("#lib li:has-text('报价说明')")
    await page.click("#lib li:has-text('报价说明') button.send")
    await page.wait_for_selector("#status:has-text('已插入聊天')")
    calls = await page.evaluate("window.__wecomCalls")
    sent = [args for name, args in calls if name == "sendChatMessage"]
    assert sent == [
        {
            "enterChat": False,
            "msgtype": "text",
            "text": {"content": "您好，我们的报价单已发您邮箱。"},
        }
    ]


async def test_another_teams_salesperson_is_refused_the_customer(ui: Ui, org: Org) -> None:
    await _seed(ui, org)
    page = await _open_sidebar(ui, "sales_b")
    await page.wait_for_selector("#status:has-text('您无权查看此客户')")
    assert await page.is_hidden("#customer")
