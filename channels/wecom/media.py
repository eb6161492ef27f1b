"""Media of received messages: where the provider's media reference sits in each
payload shape, and the download job that moves the bytes into the MediaStore.

Downloads run outside the pipeline (handlers do no network I/O): the handler
`queue_media_download` writes a MediaFetch row, `fetch_pending_media` downloads it
(media/get for app/kf messages, GetMediaData for the archive), sniffs the type, enforces
the size limit and leaves either `payload.media` or a readable refusal on the message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, runtime_checkable

import aiohttp
from sqlalchemy import select

from channels.media import MediaRejected, MediaStore
from conversations.db import Database, utcnow
from conversations.models import Message

from .api import WeComApi
from .errors import WeComApiError
from .models import MediaFetch

log = logging.getLogger(__name__)

MEDIA_TYPES = ("image", "voice", "video", "file", "emotion")
MAX_ATTEMPTS = 5


def media_ref(payload: Mapping[str, Any]) -> str | None:
    """The media reference of a stored payload: app XML `MediaId`, kf JSON
    `<msgtype>.media_id`, or archive JSON `<msgtype>.sdkfileid` (prefixed `sdk:`)."""
    if payload.get("MediaId") and payload.get("MsgType") in MEDIA_TYPES:
        return str(payload["MediaId"])
    msgtype = str(payload.get("msgtype", ""))
    if msgtype not in MEDIA_TYPES:
        return None
    part = payload.get(msgtype) or {}
    if not isinstance(part, Mapping):
        return None
    if part.get("media_id"):
        return str(part["media_id"])
    if part.get("sdkfileid"):
        return "sdk:" + str(part["sdkfileid"])
    return None


@runtime_checkable
class MediaSource(Protocol):
    async def download_media(self, ref: str) -> tuple[bytes, str]:
        """(bytes, file name) of a media reference; raises on provider errors."""
        ...


async def download_via_api(api: WeComApi, media_id: str) -> tuple[bytes, str]:
    """media/get (temporary media, valid 3 days)."""
    data, _ctype, filename = await api.get_bytes("/cgi-bin/media/get", {"media_id": media_id})
    return data, filename


SourceFor = Callable[[int], Awaitable[MediaSource | None]]


async def fetch_pending_media(
    db: Database, source_for: SourceFor, store: MediaStore, *, limit: int = 20
) -> int:
    """Download up to `limit` pending files; returns how many rows reached a final state."""
    async with db.reading() as s:
        rows = (
            await s.scalars(
                select(MediaFetch)
                .where(MediaFetch.status == "pending")
                .order_by(MediaFetch.id)
                .limit(limit)
            )
        ).all()
    finished = 0
    for row in rows:
        source = await source_for(row.account_id)
        status, error, media = "pending", None, None
        if source is None:
            status, error = "failed", "渠道账号不可用 (account unavailable)"
        else:
            try:
                data, filename = await source.download_media(row.media_id)
                stored = await asyncio.to_thread(store.put, data, filename or None)
                media = {
                    "sha256": stored.sha256,
                    "size": stored.size,
                    "mime": stored.mime,
                    "filename": stored.filename,
                }
                status = "done"
            except MediaRejected as exc:
                status, error = "refused", f"文件被拒收 (file refused): {exc.reason}"
            except WeComApiError as exc:
                status, error = "failed", f"下载失败 (download failed): {exc.readable}"
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                error = f"下载暂时失败 (download failed, will retry): {exc}"
                if row.attempts + 1 >= MAX_ATTEMPTS:
                    status = "failed"
        async with db.transaction() as s:
            fetch = await s.get(MediaFetch, row.id)
            msg = await s.get(Message, row.message_id)
            if fetch is None or msg is None:
                continue
            fetch.attempts += 1
            fetch.status = status
            fetch.error = error[:500] if error else None
            fetch.updated_at = utcnow()
            if media is not None:
                msg.payload = {**msg.payload, "media": media}
            elif status in ("refused", "failed"):
                msg.error_code = f"media_{status}"
                msg.status_reason = (error or "")[:500]
        if status != "pending":
            finished += 1
        log.info(
            "media message=%s ref=%s… %s %s", row.message_id, row.media_id[:12], status, error or ""
        )
    return finished
