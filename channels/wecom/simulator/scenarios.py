"""What happens in the WeCom/WeChat clients, pushed to crmbot the way WeCom does it —
one call per scenario, for sandbox mode and tests."""

from __future__ import annotations

import aiohttp

from .callbacks import contact_event_xml, kf_event_xml, msgaudit_notify_xml, push
from .core import SimApp, WeComSimulator


async def kf_customer_writes(
    http: aiohttp.ClientSession,
    sim: WeComSimulator,
    app: SimApp,
    callback_url: str,
    open_kfid: str,
    customer: str,
    text: str,
) -> int:
    """A WeChat user writes to a kf account: the message waits in sync_msg and the
    kf_msg_or_event callback (with a fresh Token) tells crmbot to pull."""
    sim.kf.customer_writes(app.corp_id, open_kfid, customer, text=text)
    return await push(
        http,
        callback_url,
        app,
        kf_event_xml(app.corp_id, open_kfid, sim.kf.issue_token(app.corp_id)),
    )


async def customer_adds_salesperson(
    http: aiohttp.ClientSession,
    sim: WeComSimulator,
    app: SimApp,
    callback_url: str,
    userid: str,
    name: str,
    *,
    state: str = "",
) -> tuple[str, int]:
    """A customer adds a salesperson (add_external_contact with a 20-second WelcomeCode)."""
    ext, code = sim.contacts.add_customer(app.corp_id, userid, name, state=state)
    extra = {"WelcomeCode": code} if code else {}
    if state:
        extra["State"] = state
    status = await push(
        http,
        callback_url,
        app,
        contact_event_xml(app.corp_id, "add_external_contact", userid, ext, **extra),
    )
    return ext, status


async def archived_chat(
    http: aiohttp.ClientSession,
    sim: WeComSimulator,
    app: SimApp,
    callback_url: str | None,
    sender: str,
    to: str,
    text: str,
    agent_id: int = 2000004,
) -> int:
    """A salesperson and a customer chat in WeChat; the archive records it and (when a
    callback URL is set) msgaudit_notify wakes crmbot. Returns the record's seq."""
    seq = sim.archive.chat(app.corp_id, sender, to, text=text)
    if callback_url:
        await push(http, callback_url, app, msgaudit_notify_xml(app.corp_id, agent_id))
    return seq


async def customer_scans_code(
    http: aiohttp.ClientSession,
    sim: WeComSimulator,
    app: SimApp,
    callback_url: str,
    state: str,
    name: str,
) -> tuple[str, str, int]:
    """A WeChat user scans a channel QR code (「联系我」 with `state`): they add the member
    the code shows and add_external_contact carries the code's State and a WelcomeCode.
    Returns (external_userid, the member added, callback status)."""
    way = sim.contact_ways.by_state(app.corp_id, state)
    userid = sim.contact_ways.scan(way)
    ext, code = sim.contacts.add_customer(app.corp_id, userid, name, state=state)
    extra = {"State": state, **({"WelcomeCode": code} if code else {})}
    status = await push(
        http,
        callback_url,
        app,
        contact_event_xml(app.corp_id, "add_external_contact", userid, ext, **extra),
    )
    return ext, userid, status


async def customer_deletes_salesperson(
    http: aiohttp.ClientSession,
    sim: WeComSimulator,
    app: SimApp,
    callback_url: str,
    userid: str,
    external_userid: str,
) -> int:
    """A customer deletes the salesperson in WeChat (del_follow_user)."""
    sim.contacts.customer_deletes(app.corp_id, userid, external_userid)
    return await push(
        http,
        callback_url,
        app,
        contact_event_xml(app.corp_id, "del_follow_user", userid, external_userid),
    )
