"""A small async client for WeCom's HTTP API (wechatpy has none; issue 11).

One access_token per (corp, secret) — app, 客户联系, 微信客服 and 会话存档 each have
their own secret — cached in SharedState so N processes share it, refreshed by a single
flight under a lock, and refreshed once more when WeCom says 40014/42001/42009.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from typing import Any

import aiohttp

from channels.state import SharedState

from .errors import TOKEN_ERRORS, WeComApiError

log = logging.getLogger(__name__)

DEFAULT_BASE = "https://qyapi.weixin.qq.com"
TOKEN_MARGIN = 300  # refresh 5 minutes early: WeCom may invalidate near expiry


class WeComApi:
    def __init__(
        self,
        http: aiohttp.ClientSession,
        state: SharedState,
        *,
        corp_id: str,
        secret: str,
        base_url: str = DEFAULT_BASE,
        timeout: float = 10.0,
    ) -> None:
        self.http = http
        self.state = state
        self.corp_id = corp_id
        self.secret = secret
        self.base_url = base_url.rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        digest = hashlib.sha256(secret.encode()).hexdigest()[:16]
        self._token_key = f"wecom:token:{corp_id}:{digest}"

    async def access_token(self, *, force: bool = False) -> str:
        if not force:
            cached = await self.state.get(self._token_key)
            if cached:
                return cached
        async with self.state.lock(self._token_key + ":refresh", ttl=30):
            if not force:
                cached = await self.state.get(self._token_key)
                if cached:  # another task refreshed while we waited
                    return cached
            data = await self._request(
                "GET",
                "/cgi-bin/gettoken",
                params={"corpid": self.corp_id, "corpsecret": self.secret},
            )
            token = str(data["access_token"])
            ttl = max(60, int(data.get("expires_in", 7200)) - TOKEN_MARGIN)
            await self.state.set(self._token_key, token, ttl=ttl)
            log.info("wecom token refreshed corp=%s ttl=%ss", self.corp_id, ttl)
            return token

    async def invalidate_token(self) -> None:
        await self.state.delete(self._token_key)

    async def call(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Call an API with the cached token; one retry after a token error."""
        for attempt in (1, 2):
            token = await self.access_token(force=attempt == 2)
            try:
                return await self._request(
                    method, path, params={**(params or {}), "access_token": token}, body=body
                )
            except WeComApiError as exc:
                if exc.errcode in TOKEN_ERRORS and attempt == 1:
                    log.info("wecom token rejected (%s); refreshing", exc.errcode)
                    await self.invalidate_token()
                    continue
                raise
        raise AssertionError("unreachable")

    async def get_bytes(self, path: str, params: Mapping[str, str]) -> tuple[bytes, str]:
        """Download media (media/get): bytes and the Content-Type WeCom declared."""
        token = await self.access_token()
        async with self.http.get(
            self.base_url + path, params={**params, "access_token": token}, timeout=self.timeout
        ) as resp:
            ctype = resp.headers.get("Content-Type", "")
            data = await resp.read()
            if "json" in ctype or "text/plain" in ctype:
                payload = json.loads(data or b"{}")
                raise WeComApiError(
                    int(payload.get("errcode", -1)), str(payload.get("errmsg", "")), path
                )
            return data, ctype

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        data = json.dumps(body, ensure_ascii=False).encode() if body is not None else None
        async with self.http.request(
            method,
            self.base_url + path,
            params=params,
            data=data,
            headers={"Content-Type": "application/json; charset=utf-8"} if data else None,
            timeout=self.timeout,
        ) as resp:
            text = await resp.text()
        if resp.status >= 500:
            raise WeComApiError(-1, f"HTTP {resp.status}", path)
        try:
            payload: dict[str, Any] = json.loads(text)
        except json.JSONDecodeError as exc:
            raise WeComApiError(-1, f"non-JSON answer (HTTP {resp.status})", path) from exc
        errcode = int(payload.get("errcode", 0))
        if errcode != 0:
            raise WeComApiError(errcode, str(payload.get("errmsg", "")), path)
        return payload
