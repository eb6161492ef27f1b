"""Working a conversation in the console: reply, notes, quick replies, assignment,
close/reopen, the bot/human switch, delivery status and media."""

from __future__ import annotations

from sqlalchemy import select

from conversations.access import Role, Viewer
from conversations.models import Conversation, Message
from conversations.notes import ConversationNote, fill_variables, save_quick_reply
from tests.admin_web.people import Org, csrf_of
from tests.system import System, eventually


async def _conv(console: System, conv_id: int) -> Conversation:
    async with console.services.db.reading() as s:
        conv = await s.get(Conversation, conv_id)
        assert conv is not None
        return conv


async def test_reply_reaches_the_customer_and_switches_to_human(console: System, org: Org) -> None:
    conv_id = org.conversations["sales_a"]
    http = await console.login("sales_a")
    try:
        url = f"{console.base}/conversations/{conv_id}"
        csrf = await csrf_of(http, url)
        resp = await http.post(
            f"{url}/reply",
            data={"_csrf": csrf, "text": "您好，报价单稍后发您", "idempotency_key": "r1"},
            allow_redirects=False,
        )
        assert resp.status == 302
    finally:
        await http.close()
    await eventually(lambda: _delivered(console))
    assert console.sim.sent[-1].content == "您好，报价单稍后发您"
    assert (await _conv(console, conv_id)).mode == "human"


async def _delivered(console: System) -> bool:
    return bool(console.sim.sent)


async def test_double_submitted_reply_is_queued_once(console: System, org: Org) -> None:
    conv_id = org.conversations["sales_a"]
    http = await console.login("sales_a")
    try:
        url = f"{console.base}/conversations/{conv_id}"
        csrf = await csrf_of(http, url)
        for _ in range(2):
            await http.post(
                f"{url}/reply",
                data={"_csrf": csrf, "text": "只发一次", "idempotency_key": "same"},
                allow_redirects=False,
            )
    finally:
        await http.close()
    async with console.services.db.reading() as s:
        sent = (await s.scalars(select(Message).where(Message.text == "只发一次"))).all()
    assert len(sent) == 1


async def test_failed_delivery_shows_its_reason(console: System, org: Org) -> None:
    conv_id = org.conversations["sales_a"]
    async with console.services.db.transaction() as s:
        s.add(
            Message(
                conversation_id=conv_id,
                account_id=console.wecom_account_id,
                direction="out",
                kind="text",
                text="失败的消息",
                sender_type="staff",
                status="failed",
                error_code="81013",
                status_reason="用户不在应用可见范围",
            )
        )
    http = await console.login("sales_a")
    try:
        page = await (await http.get(f"{console.base}/conversations/{conv_id}")).text()
    finally:
        await http.close()
    assert "用户不在应用可见范围" in page and "status-failed" in page


async def test_internal_note_is_stored_and_shown(console: System, org: Org) -> None:
    conv_id = org.conversations["sales_a"]
    http = await console.login("sales_a")
    try:
        url = f"{console.base}/conversations/{conv_id}"
        csrf = await csrf_of(http, url)
        await http.post(f"{url}/notes", data={"_csrf": csrf, "text": "客户下周三再联系"})
        page = await (await http.get(url)).text()
    finally:
        await http.close()
    assert "客户下周三再联系" in page
    assert console.sim.sent == []  # a note never goes to the customer
    async with console.services.db.reading() as s:
        assert len((await s.scalars(select(ConversationNote))).all()) == 1


async def test_sales_cannot_assign_to_another_team(console: System, org: Org) -> None:
    conv_id = org.conversations["sales_a"]
    http = await console.login("sales_a")
    try:
        url = f"{console.base}/conversations/{conv_id}"
        csrf = await csrf_of(http, url)
        resp = await http.post(
            f"{url}/assign",
            data={"_csrf": csrf, "assignee": str(org.staff["sales_b"])},
            allow_redirects=False,
        )
        assert resp.status == 403
        ok = await http.post(
            f"{url}/assign",
            data={"_csrf": csrf, "assignee": str(org.staff["sales_a2"])},
            allow_redirects=False,
        )
        assert ok.status == 302
    finally:
        await http.close()
    assert (await _conv(console, conv_id)).assignee_id == org.staff["sales_a2"]


async def test_close_reopen_and_bot_switch(console: System, org: Org) -> None:
    conv_id = org.conversations["unassigned"]
    http = await console.login("sales_a")
    try:
        url = f"{console.base}/conversations/{conv_id}"
        csrf = await csrf_of(http, url)
        await http.post(f"{url}/status", data={"_csrf": csrf, "status": "closed"})
        assert (await _conv(console, conv_id)).status == "closed"
        await http.post(f"{url}/status", data={"_csrf": csrf, "status": "open"})
        await http.post(f"{url}/mode", data={"_csrf": csrf, "mode": "human"})
    finally:
        await http.close()
    conv = await _conv(console, conv_id)
    assert (conv.status, conv.mode) == ("open", "human")


async def test_only_managers_write_shared_quick_replies(console: System, org: Org) -> None:
    async with console.services.db.transaction() as s:
        sales = Viewer(org.staff["sales_a"], Role.SALES, org.teams["A"])
        try:
            await save_quick_reply(s, sales, shortcut="hi", title="", body="x", shared=True)
        except PermissionError:
            pass
        else:
            raise AssertionError("a salesperson wrote a shared reply")
        mine = await save_quick_reply(s, sales, shortcut="hi", title="", body="x", shared=False)
        assert mine.owner_id == org.staff["sales_a"]


async def test_quick_reply_variables_are_filled_in_the_conversation(
    console: System, org: Org
) -> None:
    async with console.services.db.transaction() as s:
        boss = Viewer(org.staff["manager_a"], Role.MANAGER, org.teams["A"])
        await save_quick_reply(
            s,
            boss,
            shortcut="hello",
            title="问候",
            body="{customer_name}您好，我是{salesperson_name}",
            shared=True,
        )
    http = await console.login("sales_a")
    try:
        page = await (
            await http.get(f"{console.base}/conversations/{org.conversations['sales_a']}")
        ).text()
    finally:
        await http.close()
    assert "客户sales_a您好，我是SALES_A" in page


def test_unknown_variables_stay_visible() -> None:
    assert fill_variables("{customer_name} {unknown}", {"customer_name": "王"}) == "王 {unknown}"


async def test_media_is_served_only_to_those_who_see_the_conversation(
    console: System, org: Org
) -> None:
    stored = console.services.media.put(b"\x89PNG\r\n\x1a\n" + b"0" * 64, "photo.png")
    async with console.services.db.transaction() as s:
        msg = Message(
            conversation_id=org.conversations["sales_a"],
            account_id=console.wecom_account_id,
            direction="in",
            kind="image",
            text="",
            sender_type="customer",
            status="received",
            payload={
                "media": {"sha256": stored.sha256, "mime": stored.mime, "filename": "photo.png"}
            },
        )
        s.add(msg)
        await s.flush()
        mid = msg.id
    own, other = await console.login("sales_a"), await console.login("sales_b")
    try:
        ok = await own.get(f"{console.base}/media/{mid}")
        assert ok.status == 200 and ok.headers["Content-Type"] == "image/png"
        assert (await other.get(f"{console.base}/media/{mid}")).status == 403
    finally:
        await own.close()
        await other.close()
