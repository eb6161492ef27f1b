"""The material library page (素材库, issue 14): search in Chinese, create/edit/delete,
personal vs shared, images and files uploaded into the console's media store."""

from __future__ import annotations

import aiohttp
from sqlalchemy import select

from admin_web.sidebar.materials import Material
from tests.admin_web.people import Org, csrf_of
from tests.system import System

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


async def _create(http: aiohttp.ClientSession, base: str, **fields: object) -> int:
    csrf = await csrf_of(http, f"{base}/materials")
    form = aiohttp.FormData(quote_fields=False)  # as browsers send names: raw UTF-8
    form.add_field("_csrf", csrf)
    for name, value in fields.items():
        if isinstance(value, bytes):
            form.add_field(name, value, filename="海报.png", content_type="image/png")
        else:
            form.add_field(name, str(value))
    resp = await http.post(f"{base}/materials", data=form, allow_redirects=False)
    return resp.status


async def _materials(console: System) -> list[Material]:
    async with console.services.db.reading() as s:
        return list((await s.scalars(select(Material).order_by(Material.id))).all())


async def test_search_finds_a_material_by_chinese_words(console: System, org: Org) -> None:
    http = await console.login("sales_a")
    try:
        await _create(http, console.base, kind="text", title="价格说明", body="本月套餐优惠八折")
        await _create(http, console.base, kind="text", title="地址", body="上海市浦东新区")
        page = await (await http.get(f"{console.base}/materials", params={"q": "套餐优惠"})).text()
    finally:
        await http.close()
    assert "价格说明" in page
    assert "上海市浦东新区" not in page


async def test_uploaded_image_is_stored_and_served(console: System, org: Org) -> None:
    http = await console.login("sales_a")
    try:
        assert await _create(http, console.base, kind="image", title="海报", file=PNG) == 302
        (material,) = await _materials(console)
        resp = await http.get(f"{console.base}/materials/{material.id}/file")
        body = await resp.read()
    finally:
        await http.close()
    assert material.filename == "海报.png" and material.owner_id == org.staff["sales_a"]
    assert resp.headers["Content-Type"] == "image/png"
    assert body == PNG


async def test_sales_may_not_create_a_shared_material(console: System, org: Org) -> None:
    http = await console.login("sales_a")
    try:
        status = await _create(http, console.base, kind="text", title="共享", body="x", shared=1)
    finally:
        await http.close()
    assert status == 403
    assert await _materials(console) == []


async def test_manager_edits_a_shared_material(console: System, org: Org) -> None:
    http = await console.login("manager_a")
    try:
        await _create(
            http, console.base, kind="link", title="官网", url="https://example.com/a", shared=1
        )
        (material,) = await _materials(console)
        csrf = await csrf_of(http, f"{console.base}/materials/{material.id}")
        resp = await http.post(
            f"{console.base}/materials/{material.id}",
            data={"_csrf": csrf, "title": "官网首页", "url": "https://example.com/b"},
            allow_redirects=False,
        )
    finally:
        await http.close()
    assert resp.status == 302
    (edited,) = await _materials(console)
    assert (edited.title, edited.url, edited.owner_id) == (
        "官网首页",
        "https://example.com/b",
        None,
    )


async def test_sales_cannot_edit_a_shared_material(console: System, org: Org) -> None:
    manager = await console.login("manager_a")
    try:
        await _create(manager, console.base, kind="text", title="话术", body="您好", shared=1)
    finally:
        await manager.close()
    (material,) = await _materials(console)
    http = await console.login("sales_a")
    try:
        csrf = await csrf_of(http, f"{console.base}/materials")
        listing = await (await http.get(f"{console.base}/materials")).text()
        resp = await http.post(
            f"{console.base}/materials/{material.id}/delete",
            data={"_csrf": csrf},
            allow_redirects=False,
        )
    finally:
        await http.close()
    assert "话术" in listing  # shared: visible to everyone
    assert resp.status == 403
    assert (await _materials(console))[0].active


async def test_personal_material_is_hidden_from_colleagues(console: System, org: Org) -> None:
    owner = await console.login("sales_a")
    try:
        await _create(owner, console.base, kind="text", title="我的开场白", body="在吗")
    finally:
        await owner.close()
    (material,) = await _materials(console)
    http = await console.login("sales_a2")
    try:
        listing = await (await http.get(f"{console.base}/materials")).text()
        resp = await http.get(f"{console.base}/materials/{material.id}")
    finally:
        await http.close()
    assert "我的开场白" not in listing
    assert resp.status == 403


async def test_owner_deletes_a_personal_material(console: System, org: Org) -> None:
    http = await console.login("sales_a")
    try:
        await _create(http, console.base, kind="text", title="旧话术", body="过期")
        (material,) = await _materials(console)
        csrf = await csrf_of(http, f"{console.base}/materials")
        await http.post(f"{console.base}/materials/{material.id}/delete", data={"_csrf": csrf})
        listing = await (await http.get(f"{console.base}/materials")).text()
    finally:
        await http.close()
    assert "旧话术" not in listing
    assert not (await _materials(console))[0].active
