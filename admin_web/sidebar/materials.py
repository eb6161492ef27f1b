"""The material library (素材库) the sidebar inserts into chats: the console's text
quick replies (conversations.notes.QuickReply) plus images, links and files kept in the
`materials` table. Shared (owner NULL) or personal; searchable in Chinese (jieba)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

import jieba
from sqlalchemy import Boolean, ForeignKey, String, Text, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from conversations.access import AccessDenied, Role, Viewer
from conversations.db import Base, UTCDateTime, utcnow
from conversations.models import BigId
from conversations.notes import QuickReply

MAX_RESULTS = 50


class MaterialKind(enum.StrEnum):
    TEXT = "text"
    IMAGE = "image"
    LINK = "link"
    FILE = "file"


class Material(Base):
    """One library item. Images and files point at the media store (sha256); the
    sidebar uploads them to WeCom for a media id when a salesperson inserts them."""

    __tablename__ = "materials"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id"), nullable=True, index=True
    )
    kind: Mapped[str] = mapped_column(String(8))
    title: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text, default="")  # text, or a link's description
    url: Mapped[str] = mapped_column(String(1000), default="")  # link target
    image_url: Mapped[str] = mapped_column(String(1000), default="")  # link thumbnail
    media_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    filename: Mapped[str] = mapped_column(String(200), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


@dataclass(frozen=True)
class LibraryItem:
    """A quick reply or a material, as the sidebar lists it."""

    key: str  # "q12" quick reply, "m3" material
    kind: MaterialKind
    title: str
    body: str
    url: str
    image_url: str
    shared: bool
    filename: str = ""

    def as_json(self) -> dict[str, object]:
        return {
            "key": self.key,
            "kind": self.kind.value,
            "title": self.title,
            "body": self.body,
            "url": self.url,
            "image_url": self.image_url,
            "shared": self.shared,
            "filename": self.filename,
        }


def search_terms(query: str) -> list[str]:
    """jieba's search-mode words of the query, lower-cased, without blanks/punctuation."""
    words = [w.strip().lower() for w in jieba.cut_for_search(query)]
    return [w for w in dict.fromkeys(words) if w and any(ch.isalnum() for ch in w)]


def _matches(terms: list[str], *texts: str) -> bool:
    haystack = " ".join(texts).lower()
    return all(term in haystack for term in terms)


async def library(
    session: AsyncSession, viewer: Viewer, query: str = "", limit: int = MAX_RESULTS
) -> list[LibraryItem]:
    """Shared items and the viewer's own; with a query, those containing every term."""
    replies = await session.scalars(
        select(QuickReply)
        .where(
            QuickReply.active.is_(True),
            or_(QuickReply.owner_id.is_(None), QuickReply.owner_id == viewer.staff_id),
        )
        .order_by(QuickReply.shortcut)
    )
    materials = await session.scalars(
        select(Material)
        .where(
            Material.active.is_(True),
            or_(Material.owner_id.is_(None), Material.owner_id == viewer.staff_id),
        )
        .order_by(Material.id.desc())
    )
    terms = search_terms(query) if query.strip() else []
    items: list[LibraryItem] = []
    for reply in replies:
        if _matches(terms, reply.shortcut, reply.title, reply.body):
            items.append(
                LibraryItem(
                    f"q{reply.id}",
                    MaterialKind.TEXT,
                    reply.title,
                    reply.body,
                    "",
                    "",
                    reply.owner_id is None,
                )
            )
    for material in materials:
        if _matches(terms, material.title, material.body, material.url, material.filename):
            items.append(
                LibraryItem(
                    f"m{material.id}",
                    MaterialKind(material.kind),
                    material.title,
                    material.body,
                    material.url,
                    material.image_url,
                    material.owner_id is None,
                    material.filename,
                )
            )
    return items[:limit]


async def save_material(
    session: AsyncSession,
    viewer: Viewer,
    *,
    kind: MaterialKind,
    title: str,
    body: str = "",
    url: str = "",
    image_url: str = "",
    media_sha256: str | None = None,
    filename: str = "",
    shared: bool = False,
) -> Material:
    """Personal materials for anyone; shared ones only for admins and managers."""
    if shared and viewer.role not in (Role.ADMIN, Role.MANAGER):
        raise AccessDenied("only admins and managers add shared materials")
    title = title.strip()
    if not title:
        raise ValueError("a material needs a title")
    if kind == MaterialKind.TEXT and not body.strip():
        raise ValueError("a text material needs its text")
    if kind == MaterialKind.LINK and not url.startswith(("https://", "http://")):
        raise ValueError("a link material needs an http(s) URL")
    if kind in (MaterialKind.IMAGE, MaterialKind.FILE) and not media_sha256:
        raise ValueError("an image or file material needs its file")
    material = Material(
        owner_id=None if shared else viewer.staff_id,
        kind=kind.value,
        title=title[:100],
        body=body.strip(),
        url=url.strip()[:1000],
        image_url=image_url.strip()[:1000],
        media_sha256=media_sha256,
        filename=filename[:200],
    )
    session.add(material)
    await session.flush()
    return material


async def visible_material(session: AsyncSession, viewer: Viewer, material_id: int) -> Material:
    material = await session.get(Material, material_id)
    if material is None or not material.active:
        raise LookupError(material_id)
    if material.owner_id not in (None, viewer.staff_id):
        raise AccessDenied(f"material {material_id}")
    return material


def may_manage(viewer: Viewer, material: Material) -> bool:
    """Owners manage their personal items; admins and managers manage the shared ones."""
    if material.owner_id is None:
        return viewer.role in (Role.ADMIN, Role.MANAGER)
    return material.owner_id == viewer.staff_id


async def list_materials(
    session: AsyncSession, viewer: Viewer, query: str = "", kind: MaterialKind | None = None
) -> list[Material]:
    """The library's materials the viewer sees (shared and own), newest first; a query keeps
    those containing every jieba search term (the console's 素材库 page)."""
    stmt = (
        select(Material)
        .where(
            Material.active.is_(True),
            or_(Material.owner_id.is_(None), Material.owner_id == viewer.staff_id),
        )
        .order_by(Material.id.desc())
    )
    if kind is not None:
        stmt = stmt.where(Material.kind == kind.value)
    terms = search_terms(query) if query.strip() else []
    return [
        m
        for m in await session.scalars(stmt)
        if _matches(terms, m.title, m.body, m.url, m.filename)
    ]


async def update_material(
    session: AsyncSession,
    viewer: Viewer,
    material_id: int,
    *,
    title: str,
    body: str = "",
    url: str = "",
    image_url: str = "",
    media_sha256: str | None = None,
    filename: str = "",
) -> Material:
    """Edit a material's content (its kind and sharing stay); a new file replaces the old."""
    material = await visible_material(session, viewer, material_id)
    if not may_manage(viewer, material):
        raise AccessDenied(f"material {material_id}")
    kind = MaterialKind(material.kind)
    title = title.strip()
    if not title:
        raise ValueError("a material needs a title")
    if kind == MaterialKind.TEXT and not body.strip():
        raise ValueError("a text material needs its text")
    if kind == MaterialKind.LINK and not url.startswith(("https://", "http://")):
        raise ValueError("a link material needs an http(s) URL")
    material.title = title[:100]
    material.body = body.strip()
    material.url = url.strip()[:1000]
    material.image_url = image_url.strip()[:1000]
    if media_sha256:
        material.media_sha256 = media_sha256
        material.filename = filename[:200]
    return material


async def retire_material(session: AsyncSession, viewer: Viewer, material_id: int) -> Material:
    """Remove a material from the library. The row stays (inactive): chats it was
    inserted into may still refer to its file."""
    material = await visible_material(session, viewer, material_id)
    if not may_manage(viewer, material):
        raise AccessDenied(f"material {material_id}")
    material.active = False
    return material
