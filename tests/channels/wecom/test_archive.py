"""会话内容存档: the Finance SDK double → read-only timeline entries by seq, keys per
version, readable configuration errors, msgaudit_notify wake-ups."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from bot.pollers import load_cursors, store_pull_page
from channels.registry import default_registry
from channels.wecom.archive.adapter import CURSOR
from channels.wecom.archive.decode import random_key
from channels.wecom.archive.native import NativeFinanceSdk
from channels.wecom.archive.sdk import ArchiveConfigError, ArchiveError
from channels.wecom.simulator import msgaudit_notify_xml, push
from conversations.models import Conversation, Customer, Message
from conversations.types import MessageKind, Outbound, Purpose, SendOutcome
from tests.channels.wecom.world import Account, add_account, set_private_keys, start_poller
from tests.system import System, eventually

CORP = "wwarchivecorp1"


async def _adapter(system: System, account: Account) -> Any:
    loaded = await system.services.accounts.by_id(account.id)
    assert loaded is not None
    return loaded.adapter


async def _pull_all(system: System, account: Account) -> None:
    adapter = await _adapter(system, account)
    db = system.services.db
    while True:
        page = await adapter.pull(await load_cursors(db, account.id))
        await system.services.pipeline.publish(await store_pull_page(db, account.id, page))
        if not page.has_more:
            return


async def test_archived_chat_is_a_read_only_timeline_labelled_with_the_salesperson(
    sqlite_system: System,
) -> None:
    account = await add_account(sqlite_system, "wecom.archive", CORP)
    sim = sqlite_system.sim.archive
    sim.chat(CORP, "wmcust1", "lisi", text="你们的报价是多少？")
    sim.chat(CORP, "lisi", "wmcust1", text="标准版 199 元一个月")
    await _pull_all(sqlite_system, account)
    async with sqlite_system.services.db.reading() as s:
        msgs = (await s.scalars(select(Message).order_by(Message.id))).all()
        conv = (await s.scalars(select(Conversation))).one()
    assert [(m.direction, m.sender_type, m.staff_external_id, m.text) for m in msgs] == [
        ("in", "customer", "lisi", "你们的报价是多少？"),
        ("out", "staff", "lisi", "标准版 199 元一个月"),
    ]
    rules = default_registry().rules("wecom.archive")
    assert rules.read_only and not rules.auto_reply
    assert conv.account_id == account.id
    # the keyword engine and anything else reading rules stays quiet: nothing queued
    async with sqlite_system.services.db.reading() as s:
        assert (
            await s.scalars(
                select(Message).where(Message.direction == "out", Message.status == "pending")
            )
        ).all() == []


async def test_archive_joins_the_customer_known_from_contacts(sqlite_system: System) -> None:
    contact = await add_account(sqlite_system, "wecom.contact", CORP)
    archive = await add_account(sqlite_system, "wecom.archive", CORP)
    from channels.wecom.contact_sync import run_full_sync

    sqlite_system.sim.contacts.add_customer(
        CORP, "lisi", "周先生", external_userid="wmjoined", with_welcome_code=False
    )
    loaded = await sqlite_system.services.accounts.by_id(contact.id)
    assert loaded is not None
    await run_full_sync(sqlite_system.services.db, contact.id, loaded.adapter.api)  # type: ignore[attr-defined]
    sqlite_system.sim.archive.chat(CORP, "wmjoined", "lisi", text="在吗")
    await _pull_all(sqlite_system, archive)
    async with sqlite_system.services.db.reading() as s:
        customers = (await s.scalars(select(Customer))).all()
    assert [c.display_name for c in customers] == ["周先生"]


async def test_send_on_the_archive_is_refused(sqlite_system: System) -> None:
    account = await add_account(sqlite_system, "wecom.archive", CORP)
    adapter = await _adapter(sqlite_system, account)
    result = await adapter.send(
        Outbound(
            key="k",
            account=adapter.account,
            recipient="wmx",
            kind=MessageKind.TEXT,
            text="hi",
            purpose=Purpose.REPLY,
        )
    )
    assert (result.outcome, result.error_code) == (SendOutcome.FAILED, "read_only")


async def test_new_key_version_without_its_private_key_stops_with_a_clear_error(
    sqlite_system: System,
) -> None:
    account = await add_account(sqlite_system, "wecom.archive", CORP)
    sim = sqlite_system.sim.archive
    sim.chat(CORP, "wmcust1", "lisi", text="第一条")
    await _pull_all(sqlite_system, account)
    new_pem = sim.rotate_key(CORP)
    sim.chat(CORP, "wmcust1", "lisi", text="第二条")
    adapter = await _adapter(sqlite_system, account)
    with pytest.raises(ArchiveConfigError, match="publickey_ver=2"):
        await adapter.pull(await load_cursors(sqlite_system.services.db, account.id))
    assert (await load_cursors(sqlite_system.services.db, account.id))[CURSOR] == "1"  # not skipped
    await set_private_keys(sqlite_system, account, {"1": account.private_key or "", "2": new_pem})
    await _pull_all(sqlite_system, account)
    async with sqlite_system.services.db.reading() as s:
        texts = (await s.scalars(select(Message.text).order_by(Message.id))).all()
    assert texts == ["第一条", "第二条"]


async def test_wrong_private_key_is_reported_as_a_key_mismatch(sqlite_system: System) -> None:
    account = await add_account(sqlite_system, "wecom.archive", CORP)
    other = sqlite_system.sim.archive.rotate_key("wwsomeoneelse")
    await set_private_keys(sqlite_system, account, {"1": other})
    sqlite_system.sim.archive.chat(CORP, "wmcust1", "lisi", text="x")
    adapter = await _adapter(sqlite_system, account)
    with pytest.raises(ArchiveConfigError, match="does not fit"):
        await adapter.pull({})


@pytest.mark.parametrize(
    ("trouble", "words"),
    [("expired", "续费"), ("untrusted", "可信 IP"), ("secret", "Secret")],
)
async def test_connection_check_explains_archive_trouble(
    sqlite_system: System, trouble: str, words: str
) -> None:
    account = await add_account(sqlite_system, "wecom.archive", CORP)
    sim = sqlite_system.sim.archive
    if trouble == "expired":
        sim.expired.add(CORP)
    elif trouble == "untrusted":
        sim.untrusted.add(CORP)
    else:
        sim.secrets_by_corp[CORP] = "rotated"
    adapter = await _adapter(sqlite_system, account)
    check = await adapter.check_connection()
    assert not check.ok and words in check.message


async def test_expired_licence_raises_301052(sqlite_system: System) -> None:
    account = await add_account(sqlite_system, "wecom.archive", CORP)
    sqlite_system.sim.archive.expired.add(CORP)
    adapter = await _adapter(sqlite_system, account)
    with pytest.raises(ArchiveError) as info:
        await adapter.pull({})
    assert info.value.code == 301052


async def test_msgaudit_notify_wakes_the_poller(sqlite_system: System) -> None:
    account = await add_account(sqlite_system, "wecom.archive", CORP)
    await start_poller(sqlite_system, account, idle_wait=600)  # only a wake-up can pull
    sqlite_system.sim.archive.chat(CORP, "wmcust1", "lisi", text="早上好")

    async def stored() -> list[str]:
        async with sqlite_system.services.db.reading() as s:
            return list((await s.scalars(select(Message.text))).all())

    await eventually(stored)  # the first pull at start
    sqlite_system.sim.archive.chat(CORP, "wmcust1", "lisi", text="还在吗")
    async with aiohttp.ClientSession() as http:
        status = await push(
            http,
            sqlite_system.callback_url("wecom.archive", account.token),
            account.app,
            msgaudit_notify_xml(CORP, 2000004),
        )
    assert status == 200

    async def both() -> list[str] | None:
        texts = await stored()
        return texts if len(texts) == 2 else None

    assert sorted(await eventually(both)) == ["早上好", "还在吗"]


async def test_archived_image_is_downloaded_in_chunks(sqlite_system: System) -> None:
    account = await add_account(sqlite_system, "wecom.archive", CORP)
    sim = sqlite_system.sim.archive
    sim.chunk_size = 1000
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 20
    fileid = sim.add_file(png)
    adapter = await _adapter(sqlite_system, account)
    data, _name = await adapter.download_media("sdk:" + fileid)
    assert data == png


async def test_native_sdk_reports_a_missing_library_clearly(tmp_path: Any) -> None:
    sdk = NativeFinanceSdk(str(tmp_path / "libWeWorkFinanceSdk_C.so"), "wwcorp", "secret")
    with pytest.raises(ArchiveConfigError, match="Finance SDK"):
        await sdk.get_chat_data(0, 10, 5)
    with pytest.raises(ArchiveConfigError, match="finance_sdk_path"):
        NativeFinanceSdk("", "wwcorp", "secret")


async def test_sensitive_word_in_an_archived_chat_alerts_managers_once(
    sqlite_system: System,
) -> None:
    from conversations.access import Role
    from conversations.notifications import StaffNotification
    from tests.channels.wecom.world import use_wecom_handlers

    use_wecom_handlers(sqlite_system)
    boss = await sqlite_system.add_staff("boss", Role.MANAGER)
    await sqlite_system.add_staff("xiaowang", Role.SALES)
    account = await add_account(
        sqlite_system, "wecom.archive", CORP, config={"sensitive_words": ["回扣", "私下转账"]}
    )
    sqlite_system.sim.archive.chat(CORP, "lisi", "wmcust1", text="可以给您回扣，私下转账就行")
    sqlite_system.sim.archive.chat(CORP, "lisi", "wmcust1", text="正常报价 199 元")
    await _pull_all(sqlite_system, account)

    async def alerts() -> list[StaffNotification]:
        async with sqlite_system.services.db.reading() as s:
            return list((await s.scalars(select(StaffNotification))).all())

    found = await eventually(alerts)
    assert [(n.staff_id, n.kind) for n in found] == [(boss, "sensitive_word")]
    assert "回扣、私下转账" in found[0].text and "lisi" in found[0].text


@pytest.mark.parametrize("garbage", [b"", b"\x07\x1b"])
def test_a_wrong_key_that_decrypts_to_garbage_is_a_key_mismatch(garbage: bytes) -> None:
    # OpenSSL's implicit rejection: a wrong private key yields pseudo-random bytes
    class WrongKey:
        def decrypt(self, _data: bytes, _padding: object) -> bytes:
            return garbage

    with pytest.raises(ArchiveConfigError, match="does not fit"):
        random_key({1: WrongKey()}, 1, "AAAA")  # type: ignore[dict-item]
