"""Every documented callback, sync_msg item and archive record type, from fixtures shaped
as the WeCom documentation shows them (each fixture names its doc page), for two corps
at once."""

from __future__ import annotations

import json

import aiohttp
from sqlalchemy import select

from channels.wecom.archive.decode import DOCUMENTED_ARCHIVE
from channels.wecom.archive.decode import to_inbound as archive_inbound
from channels.wecom.inbound import DOCUMENTED_CALLBACKS, to_inbound
from channels.wecom.kf_inbound import DOCUMENTED_KF
from channels.wecom.kf_inbound import to_inbound as kf_inbound
from channels.wecom.simulator import push
from conversations.models import ChannelEvent, Message
from conversations.types import Direction, InboundEvent, InboundMessage
from tests.channels.wecom.world import FIXTURES, add_account, fixture_json, fixture_xml
from tests.system import System, eventually

CORPS = ("wwcorpalpha0001", "wwcorpbeta00002")


def _type_of(item: InboundMessage | InboundEvent) -> str:
    if isinstance(item, InboundEvent):
        return item.event_type
    prefix = (
        "servicer"
        if item.direction == Direction.OUTBOUND and item.payload.get("origin") == 5
        else "message"
    )
    return f"{prefix}.{item.kind.value}"


def _names(ext: str, prefix: str = "") -> list[str]:
    return sorted(p.stem for p in FIXTURES.glob(f"{prefix}*.{ext}"))


def test_every_fixture_names_its_doc_page() -> None:
    for path in sorted(p for p in FIXTURES.rglob("*") if p.is_file()):
        text = path.read_text(encoding="utf-8")
        source = json.loads(text)["_source"] if path.suffix == ".json" else text.split("-->")[0]
        assert "developer.work.weixin.qq.com/document/path/" in source, path.name


def test_every_documented_callback_type_has_a_fixture() -> None:
    names = [n for n in _names("xml")]
    covered = {_type_of(to_inbound(fixture_xml(n, CORPS[0]))) for n in names}  # type: ignore[arg-type]
    assert covered >= DOCUMENTED_CALLBACKS, DOCUMENTED_CALLBACKS - covered


def test_every_documented_kf_item_type_has_a_fixture() -> None:
    covered = {
        _type_of(i)
        for n in _names("json", "kf_")
        for i in kf_inbound(fixture_json(n))
        if isinstance(i, (InboundMessage, InboundEvent))
    }
    assert covered >= DOCUMENTED_KF, DOCUMENTED_KF - covered


def test_every_documented_archive_record_type_has_a_fixture() -> None:
    covered = {
        _type_of(i)
        for n in _names("json", "archive_")  # type: ignore[arg-type]
        for i in archive_inbound(fixture_json(n), 1)
    }
    assert covered >= DOCUMENTED_ARCHIVE, DOCUMENTED_ARCHIVE - covered


def _kind_for(name: str) -> str:
    if name.startswith("message_"):
        return "wecom.app"
    if name == "kf_msg_or_event":
        return "wecom.kf"
    if name == "msgaudit_notify":
        return "wecom.archive"
    return "wecom.contact"


async def test_each_callback_fixture_is_stored_once_per_corp(sqlite_system: System) -> None:
    accounts = {
        (corp, kind): await add_account(sqlite_system, kind, corp)
        for corp in CORPS
        for kind in ("wecom.app", "wecom.contact", "wecom.kf", "wecom.archive")
    }
    names = _names("xml")
    async with aiohttp.ClientSession() as http:
        for name in names:
            for corp in CORPS:
                account = accounts[(corp, _kind_for(name))]
                url = sqlite_system.callback_url(account.kind, account.token)
                for _ in range(2):  # a WeCom retry is stored once
                    assert await push(http, url, account.app, fixture_xml(name, corp)) == 200, name
    async with sqlite_system.services.db.reading() as s:
        messages = (await s.scalars(select(Message))).all()
        events = (await s.scalars(select(ChannelEvent))).all()
    for corp in CORPS:
        for name in names:
            account = accounts[(corp, _kind_for(name))]
            expected = _type_of(to_inbound(fixture_xml(name, corp)))  # type: ignore[arg-type]
            if expected.startswith("message."):
                got = [
                    m
                    for m in messages
                    if m.account_id == account.id and f"message.{m.kind}" == expected
                ]
            else:
                got = [e for e in events if e.account_id == account.id and e.event_type == expected]
            assert len(got) == 1, (corp, name, len(got))


async def test_each_kf_fixture_is_pulled_for_both_corps(sqlite_system: System) -> None:
    accounts = [await add_account(sqlite_system, "wecom.kf", corp) for corp in CORPS]
    names = _names("json", "kf_")
    for account in accounts:
        for name in names:
            item = fixture_json(name)
            item["send_time"] = int(sqlite_system.sim.clock() - 60)  # inside the 3-day horizon
            if "open_kfid" in item:
                item["open_kfid"] = account.open_kfid
            else:
                item["event"]["open_kfid"] = account.open_kfid
            sqlite_system.sim.kf._append(account.corp_id, item)
    from bot.pollers import load_cursors, store_pull_page

    for account in accounts:
        loaded = await sqlite_system.services.accounts.by_id(account.id)
        assert loaded is not None
        page = await loaded.adapter.pull(await load_cursors(sqlite_system.services.db, account.id))  # type: ignore[attr-defined]
        await store_pull_page(sqlite_system.services.db, account.id, page)
    async with sqlite_system.services.db.reading() as s:
        for account in accounts:
            msgs = (await s.scalars(select(Message).where(Message.account_id == account.id))).all()
            events = (
                await s.scalars(select(ChannelEvent).where(ChannelEvent.account_id == account.id))
            ).all()
            assert sorted(m.kind for m in msgs) == sorted(
                ["text", "image", "voice", "video", "file", "location", "link", "text"]
            )
            assert [m.sender_type for m in msgs if m.direction == "out"] == ["staff"]
            assert {e.event_type for e in events} == {
                "wecom.kf.enter_session",
                "wecom.kf.msg_send_fail",
                "wecom.kf.session_status_change",
            }


async def test_each_archive_fixture_becomes_a_read_only_entry_for_both_corps(
    sqlite_system: System,
) -> None:
    accounts = [await add_account(sqlite_system, "wecom.archive", corp) for corp in CORPS]
    names = _names("json", "archive_")
    for account in accounts:
        for name in names:
            sqlite_system.sim.archive.add_record(account.corp_id, fixture_json(name))
    from bot.pollers import load_cursors, store_pull_page

    for account in accounts:
        loaded = await sqlite_system.services.accounts.by_id(account.id)
        assert loaded is not None
        page = await loaded.adapter.pull(await load_cursors(sqlite_system.services.db, account.id))  # type: ignore[attr-defined]
        await store_pull_page(sqlite_system.services.db, account.id, page)

    async def stored() -> list[Message]:
        async with sqlite_system.services.db.reading() as s:
            return list((await s.scalars(select(Message))).all())

    msgs = await eventually(stored)
    for account in accounts:
        mine = [m for m in msgs if m.account_id == account.id]
        assert len(mine) == len(names) - 1  # the recall is an event
        assert {m.kind for m in mine} == {
            "text",
            "image",
            "voice",
            "video",
            "file",
            "location",
            "link",
        }
        by_dir = {m.kind: (m.direction, m.staff_external_id) for m in mine}
        assert by_dir["text"] == ("out", "XuJinSheng")  # the salesperson wrote
        assert by_dir["image"] == ("in", "XuJinSheng")  # the customer wrote to them
