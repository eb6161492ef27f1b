"""The material library (素材库) page: the texts, images, links and files the WeCom
sidebar inserts into chats. Everyone keeps personal materials; admins and managers keep
the shared ones. Images and files go into the console's media store."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

from aiohttp import web
from multidict import MultiDictProxy
from sqlalchemy.ext.asyncio import AsyncSession

from channels.media import MediaRejected, MediaStore, sniff_mime
from conversations.access import AccessDenied, Role

from .deps import DEPS_KEY
from .forms import denied
from .i18n import gettext
from .policy import STAFF, allow
from .render import render
from .security import viewer_of
from .sidebar.materials import (
    Material,
    MaterialKind,
    list_materials,
    may_manage,
    retire_material,
    save_material,
    update_material,
    visible_material,
)

routes = web.RouteTableDef()
Form = MultiDictProxy[str | bytes | bytearray | web.FileField]


async def _upload(media: MediaStore | None, form: Form) -> tuple[str | None, str]:
    """The uploaded file's media key and name, or (None, "") when none was sent."""
    upload = form.get("file")
    if not isinstance(upload, web.FileField):
        return None, ""
    data = upload.file.read()
    if not data:
        return None, ""
    if media is None:
        raise ValueError(gettext("No media store is configured."))
    try:
        # up to 20 MB written to disk: off the event loop
        stored = await asyncio.to_thread(media.put, data, upload.filename)
    except MediaRejected as exc:
        raise ValueError(exc.reason) from None
    return stored.sha256, upload.filename


def _text(form: Form, name: str) -> str:
    value = form.get(name, "")
    return value if isinstance(value, str) else ""


async def _page(
    request: web.Request, *, error: str | None = None, status: int = 200
) -> web.Response:
    deps = request.app[DEPS_KEY]
    viewer = viewer_of(request)
    query = request.query.get("q", "")
    try:
        kind = MaterialKind(request.query.get("kind", "")) if request.query.get("kind") else None
    except ValueError:
        kind = None
    async with deps.db.reading() as s:
        materials = await list_materials(s, viewer, query, kind)
    return await render(
        request,
        "materials.html",
        {
            "materials": materials,
            "manageable": {m.id for m in materials if may_manage(viewer, m)},
            "kinds": [k.value for k in MaterialKind],
            "query": query,
            "kind": kind.value if kind else "",
            "may_share": viewer.role in (Role.ADMIN, Role.MANAGER),
            "error": error,
        },
        status=status,
    )


@routes.get("/materials")
@allow(STAFF)
async def materials_page(request: web.Request) -> web.Response:
    """The library, searchable in Chinese (?q=) and by kind (?kind=)."""
    return await _page(request)


@routes.post("/materials")
@allow(STAFF)
async def create_material(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    form = await request.post()
    try:
        kind = MaterialKind(_text(form, "kind"))
        sha256, filename = await _upload(deps.media, form)
        async with deps.db.transaction() as s:
            await save_material(
                s,
                viewer_of(request),
                kind=kind,
                title=_text(form, "title"),
                body=_text(form, "body"),
                url=_text(form, "url"),
                image_url=_text(form, "image_url"),
                media_sha256=sha256,
                filename=filename,
                shared=_text(form, "shared") == "1",
            )
    except AccessDenied as exc:
        raise denied(exc) from None
    except ValueError as exc:
        return await _page(request, error=str(exc), status=400)
    raise web.HTTPFound("/materials")


async def _manageable(request: web.Request, material: Material) -> None:
    if not may_manage(viewer_of(request), material):
        raise denied()


@routes.get("/materials/{id:\\d+}")
@allow(STAFF)
async def edit_page(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    async with deps.db.reading() as s:
        material = await _visible(request, s)
    await _manageable(request, material)
    return await render(request, "material_edit.html", {"m": material, "error": None})


async def _visible(request: web.Request, s: AsyncSession) -> Material:
    try:
        return await visible_material(s, viewer_of(request), int(request.match_info["id"]))
    except LookupError:
        raise web.HTTPNotFound() from None
    except AccessDenied as exc:
        raise denied(exc) from None


@routes.post("/materials/{id:\\d+}")
@allow(STAFF)
async def save_edit(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    form = await request.post()
    material_id = int(request.match_info["id"])
    try:
        sha256, filename = await _upload(deps.media, form)
        async with deps.db.transaction() as s:
            await update_material(
                s,
                viewer_of(request),
                material_id,
                title=_text(form, "title"),
                body=_text(form, "body"),
                url=_text(form, "url"),
                image_url=_text(form, "image_url"),
                media_sha256=sha256,
                filename=filename,
            )
    except LookupError:
        raise web.HTTPNotFound() from None
    except AccessDenied as exc:
        raise denied(exc) from None
    except ValueError as exc:
        async with deps.db.reading() as s:
            material = await _visible(request, s)
        return await render(
            request, "material_edit.html", {"m": material, "error": str(exc)}, status=400
        )
    raise web.HTTPFound("/materials")


@routes.post("/materials/{id:\\d+}/delete")
@allow(STAFF)
async def delete_material(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    async with deps.db.transaction() as s:
        try:
            await retire_material(s, viewer_of(request), int(request.match_info["id"]))
        except LookupError:
            raise web.HTTPNotFound() from None
        except AccessDenied as exc:
            raise denied(exc) from None
    raise web.HTTPFound("/materials")


@routes.get("/materials/{id:\\d+}/file")
@allow(STAFF)
async def material_file(request: web.Request) -> web.StreamResponse:
    """An image or file material's bytes, to those who see the material."""
    deps = request.app[DEPS_KEY]
    async with deps.db.reading() as s:
        material = await _visible(request, s)
    if deps.media is None or not material.media_sha256:
        raise web.HTTPNotFound()
    try:
        path = deps.media.path_for(material.media_sha256)
        with path.open("rb") as fh:
            head = fh.read(4096)
    except (ValueError, FileNotFoundError):
        raise web.HTTPNotFound() from None
    mime = sniff_mime(head)  # sniffed, never the uploader's label
    inline = mime.startswith("image/")
    name = material.filename or material.media_sha256[:12]
    return web.FileResponse(
        path,
        headers={
            "Content-Type": mime,
            "Content-Disposition": ("inline" if inline else "attachment")
            + f"; filename*=UTF-8''{quote(name)}",
            "Cache-Control": "private, max-age=3600",
        },
    )
