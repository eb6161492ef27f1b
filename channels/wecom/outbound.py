"""Outbound pieces shared by the kinds: media upload from the MediaStore (media_id cached
for its 3-day life), errors → SendResult, the connection check."""

from __future__ import annotations

from typing import Any

import aiohttp

from channels.base import ConnectionCheck
from channels.media import MediaStore
from conversations.types import MessageKind, Outbound, SendOutcome, SendResult

from .api import WeComApi
from .errors import WeComApiError

MEDIA_ID_TTL = 2.5 * 86400  # temporary media live 3 days; re-upload a little before
_MEDIA_TYPES = {
    MessageKind.IMAGE: "image",
    MessageKind.FILE: "file",
    MessageKind.VOICE: "voice",
    MessageKind.VIDEO: "video",
}


class MissingMedia(Exception):
    pass


def media_type(kind: MessageKind) -> str | None:
    return _MEDIA_TYPES.get(kind)


async def media_id_for(api: WeComApi, store: MediaStore, message: Outbound) -> str:
    """Upload the message's stored file once per 2.5 days and credential; its media_id."""
    kind = media_type(message.kind)
    media = message.payload.get("media") or {}
    sha = str(media.get("sha256", ""))
    if kind is None or not sha:
        raise MissingMedia(f"{message.kind} message without a stored file")
    key = f"wecom:media:{api.credential}:{kind}:{sha}"
    cached = await api.state.get(key)
    if cached:
        return cached
    try:
        data = store.read(sha)
    except (OSError, ValueError) as exc:
        raise MissingMedia(f"stored file {sha[:12]}… is missing") from exc
    media_id = await api.upload(
        kind,
        data,
        str(media.get("filename") or f"{kind}-{sha[:8]}"),
        str(media.get("mime") or "application/octet-stream"),
    )
    await api.state.set(key, media_id, ttl=MEDIA_ID_TTL)
    return media_id


def result_of(exc: WeComApiError | aiohttp.ClientError | TimeoutError) -> SendResult:
    if isinstance(exc, WeComApiError):
        return SendResult(
            exc.outcome,
            error_code=str(exc.errcode),
            reason=exc.readable,
            retry_after=exc.retry_after,
        )
    return SendResult(
        SendOutcome.UNKNOWN, error_code="network", reason=str(exc) or type(exc).__name__
    )


def failed(code: str, reason: str) -> SendResult:
    return SendResult(SendOutcome.FAILED, error_code=code, reason=reason)


async def check_api(
    api: WeComApi, probe: tuple[str, str, dict[str, Any] | None] | None = None
) -> ConnectionCheck:
    """Fetch a fresh token (and call one API the kind needs): plain-words result."""
    try:
        await api.access_token(force=True)
        if probe is not None:
            method, path, body = probe
            await api.call(method, path, body=body)
    except WeComApiError as exc:
        return ConnectionCheck(False, exc.advice, {"errcode": exc.errcode})
    except (aiohttp.ClientError, TimeoutError) as exc:
        return ConnectionCheck(False, f"无法连接企业微信 API (cannot reach WeCom API): {exc}")
    return ConnectionCheck(True, "连接正常 (connected)")
