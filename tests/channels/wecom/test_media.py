"""Media of received messages: downloaded through media/get into the content-addressed
store with a sniffed type; over-limit or forbidden files leave a clear reason."""

from __future__ import annotations

from typing import Any

import aiohttp
from sqlalchemy import select

from channels.wecom.media import MediaSource, fetch_pending_media
from channels.wecom.models import MediaFetch
from channels.wecom.simulator import push, xml_of
from conversations.models import Message
from tests.channels.wecom.world import Account, add_account, use_wecom_handlers
from tests.system import System, eventually

CORP = "wwmediacorp001"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 500


async def _post_image(system: System, account: Account, media_id: str, msg_id: int) -> None:
    plain = xml_of(
        {
            "ToUserName": CORP,
            "FromUserName": "zhangsan",
            "CreateTime": 1700000000,
            "MsgType": "image",
            "PicUrl": "http://example/pic",
            "MediaId": media_id,
            "MsgId": msg_id,
            "AgentID": account.app.agent_id,
        }
    )
    async with aiohttp.ClientSession() as http:
        assert (
            await push(http, system.callback_url("wecom.app", account.token), account.app, plain)
            == 200
        )


async def _fetch_rows(system: System) -> list[MediaFetch]:
    async with system.services.db.reading() as s:
        return list((await s.scalars(select(MediaFetch))).all())


async def _source_for(system: System) -> Any:
    async def source_for(account_id: int) -> Any:
        loaded = await system.services.accounts.by_id(account_id)
        assert loaded is not None and isinstance(loaded.adapter, MediaSource)
        return loaded.adapter

    return source_for


async def test_image_is_downloaded_into_the_media_store(sqlite_system: System) -> None:
    use_wecom_handlers(sqlite_system)
    account = await add_account(sqlite_system, "wecom.app", CORP)
    media_id = sqlite_system.sim.add_media(PNG, "image/jpeg", "photo.jpg", "image")  # label lies
    await _post_image(sqlite_system, account, media_id, 1)
    await eventually(lambda: _fetch_rows(sqlite_system))
    store = sqlite_system.services.media
    assert (
        await fetch_pending_media(
            sqlite_system.services.db, await _source_for(sqlite_system), store
        )
        == 1
    )
    async with sqlite_system.services.db.reading() as s:
        msg = (await s.scalars(select(Message).where(Message.account_id == account.id))).one()
    media = msg.payload["media"]
    assert media["mime"] == "image/png"  # sniffed from the bytes, not the label
    assert store.read(media["sha256"]) == PNG


async def test_forbidden_file_is_refused_with_a_reason_on_the_message(
    sqlite_system: System,
) -> None:
    use_wecom_handlers(sqlite_system)
    account = await add_account(sqlite_system, "wecom.app", CORP)
    media_id = sqlite_system.sim.add_media(
        b"MZ\x90\x00" + b"\x00" * 100, "image/jpeg", "x.jpg", "image"
    )
    await _post_image(sqlite_system, account, media_id, 2)
    await eventually(lambda: _fetch_rows(sqlite_system))
    await fetch_pending_media(
        sqlite_system.services.db, await _source_for(sqlite_system), sqlite_system.services.media
    )
    async with sqlite_system.services.db.reading() as s:
        msg = (await s.scalars(select(Message).where(Message.account_id == account.id))).one()
        row = (await s.scalars(select(MediaFetch))).one()
    assert row.status == "refused"
    assert msg.error_code == "media_refused" and "x-msdownload" in (msg.status_reason or "")
    assert "media" not in msg.payload


async def test_expired_media_id_fails_readably(sqlite_system: System) -> None:
    use_wecom_handlers(sqlite_system)
    account = await add_account(sqlite_system, "wecom.app", CORP)
    await _post_image(sqlite_system, account, "3expired-media-id", 3)
    await eventually(lambda: _fetch_rows(sqlite_system))
    await fetch_pending_media(
        sqlite_system.services.db, await _source_for(sqlite_system), sqlite_system.services.media
    )
    async with sqlite_system.services.db.reading() as s:
        msg = (await s.scalars(select(Message).where(Message.account_id == account.id))).one()
    assert msg.error_code == "media_failed" and "3 天" in (msg.status_reason or "")
