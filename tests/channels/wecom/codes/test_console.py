"""The console's channel QR code pages: create through the form (WeCom gets the code),
refusals shown on the form, statistics, QR download and delete."""

from __future__ import annotations

import re

import aiohttp
from sqlalchemy import select

from channels.wecom.codes.models import ContactCode
from conversations.access import Role
from tests.channels.wecom.codes.world import CodesWorld, codes_world
from tests.system import System


async def _marketer(system: System) -> tuple[aiohttp.ClientSession, str]:
    await system.add_staff("marketer", Role.MARKETER)
    http = await system.login("marketer")
    page = await (await http.get(f"{system.base}/wecom/codes/new")).text()
    csrf = re.search(r'name="_csrf" value="([^"]+)"', page)
    assert csrf
    return http, csrf.group(1)


def _form(world: CodesWorld, csrf: str, **changes: str) -> aiohttp.FormData:
    form = aiohttp.FormData()
    values = {
        "_csrf": csrf,
        "account_id": str(world.account.id),
        "name": "展会",
        "state": "expo-2026",
        "code_type": "single",
        "rota_mode": "round_robin",
        "members": "lisi, 20, 1-5, 9-18\nwangwu",
        "backup_userid": "wangwu",
        "skip_verify": "1",
        "welcome_text": "欢迎来到展会",
        "attachments": "link 展会手册 | https://example.com/expo | 下载",
        **changes,
    }
    for key, value in values.items():
        form.add_field(key, value)
    form.add_field("tag_ids", str(world.tags["海报"]))
    return form


async def _codes(system: System) -> list[ContactCode]:
    async with system.services.db.reading() as s:
        return list((await s.scalars(select(ContactCode))).all())


async def test_form_creates_the_code_on_wecom(sqlite_system: System) -> None:
    world = await codes_world(sqlite_system)
    http, csrf = await _marketer(sqlite_system)
    async with http:
        resp = await http.post(
            f"{sqlite_system.base}/wecom/codes", data=_form(world, csrf), allow_redirects=False
        )
        assert resp.status == 302, await resp.text()
        detail = await (await http.get(sqlite_system.base + resp.headers["Location"])).text()
    (code,) = await _codes(sqlite_system)
    way = sqlite_system.sim.contact_ways.ways[code.config_id or ""]
    assert (way.state, way.type, way.skip_verify) == ("expo-2026", 1, True)
    assert code.members[0] == {
        "userid": "lisi",
        "daily_limit": 20,
        "weekdays": [0, 1, 2, 3, 4],
        "start_hour": 9,
        "end_hour": 18,
    }
    assert code.welcome_attachments == [
        {
            "msgtype": "link",
            "link": {"title": "展会手册", "url": "https://example.com/expo", "desc": "下载"},
        }
    ]
    assert code.tag_ids == [world.tags["海报"]] and "展会" in detail


async def test_state_over_30_characters_is_shown_on_the_form(sqlite_system: System) -> None:
    world = await codes_world(sqlite_system)
    http, csrf = await _marketer(sqlite_system)
    async with http:
        resp = await http.post(
            f"{sqlite_system.base}/wecom/codes", data=_form(world, csrf, state="s" * 31)
        )
        page = await resp.text()
    assert resp.status == 400 and "1–30" in page
    assert await _codes(sqlite_system) == [] and sqlite_system.sim.contact_ways.ways == {}


async def test_wecom_refusal_is_shown_and_nothing_is_kept(sqlite_system: System) -> None:
    world = await codes_world(sqlite_system)
    http, csrf = await _marketer(sqlite_system)
    async with http:
        resp = await http.post(
            f"{sqlite_system.base}/wecom/codes", data=_form(world, csrf, members="nobody")
        )
        page = await resp.text()
    assert resp.status == 400 and "UserID" in page
    assert await _codes(sqlite_system) == []


async def test_qr_download_and_delete(sqlite_system: System) -> None:
    world = await codes_world(sqlite_system)
    http, csrf = await _marketer(sqlite_system)
    async with http:
        await http.post(f"{sqlite_system.base}/wecom/codes", data=_form(world, csrf))
        (code,) = await _codes(sqlite_system)
        qr = await http.get(f"{sqlite_system.base}/wecom/codes/{code.id}/qr.png")
        png = await qr.read()
        assert qr.headers["Content-Disposition"] == 'attachment; filename="qr-expo-2026.png"'
        assert png.startswith(b"\x89PNG")
        resp = await http.post(
            f"{sqlite_system.base}/wecom/codes/{code.id}/delete",
            data={"_csrf": csrf},
            allow_redirects=False,
        )
        assert resp.status == 302
        listing = await (await http.get(f"{sqlite_system.base}/wecom/codes")).text()
    (deleted,) = await _codes(sqlite_system)
    assert deleted.status == "deleted" and sqlite_system.sim.contact_ways.ways == {}
    assert "expo-2026" not in listing


async def test_edit_rewrites_the_user_list_on_wecom(sqlite_system: System) -> None:
    world = await codes_world(sqlite_system)
    http, csrf = await _marketer(sqlite_system)
    async with http:
        await http.post(f"{sqlite_system.base}/wecom/codes", data=_form(world, csrf))
        (code,) = await _codes(sqlite_system)
        resp = await http.post(
            f"{sqlite_system.base}/wecom/codes/{code.id}",
            data=_form(world, csrf, members="wangwu", name="展会二期"),
            allow_redirects=False,
        )
        assert resp.status == 302, await resp.text()
    (edited,) = await _codes(sqlite_system)
    assert sqlite_system.sim.contact_ways.ways[code.config_id or ""].user == ["wangwu"]
    assert (edited.name, edited.current_users) == ("展会二期", ["wangwu"])
