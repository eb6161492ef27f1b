"""A small async client for WeCom's HTTP API (wechatpy has none; issue 11).

- One access_token per (corp, secret) — app, 客户联系, 微信客服 and 会话存档 each have
  their own secret — cached in SharedState so N processes share it, refreshed by a single
  flight under a lock, and refreshed once more when WeCom says 40014/42001/42009.
- A per-credential token bucket keeps calls under the account's frequency limit; a
  45009/45033 answer puts the credential into a shared cool-down so every process backs
  off; "system busy" (-1) is retried a few times with jitter.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from channels.state import SharedState, wait_for_token

from .errors import BUSY_ERRORS, LIMIT_ERRORS, TOKEN_ERRORS, WeComApiError

log = logging.getLogger(__name__)

DEFAULT_BASE = "https://qyapi.weixin.qq.com"
TOKEN_MARGIN = 300  # refresh 5 minutes early: WeCom may invalidate near expiry
BUSY_RETRIES = 3  # doc: "系统繁忙" may be retried up to 3 times


@dataclass(frozen=True)
class RateLimit:
    """A provider limit of `calls` per `seconds`; we send at 98 % of it.

    The bucket, shared by every process on the credential, refills at 98 % with a burst
    of 1 %, so any window of `seconds` sees at most 0.99 × calls: the remaining 1 %
    absorbs network jitter between our grant and WeCom's count.
    """

    calls: int = 10_000  # per corp per API per minute (research B.4)
    seconds: float = 60.0

    @property
    def rate(self) -> float:
        return 0.98 * self.calls / self.seconds

    @property
    def burst(self) -> float:
        return max(1.0, 0.01 * self.calls)


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
        limit: RateLimit | None = None,
    ) -> None:
        self.http = http
        self.state = state
        self.corp_id = corp_id
        self.secret = secret
        self.base_url = base_url.rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.limit = limit or RateLimit()
        digest = hashlib.sha256(secret.encode()).hexdigest()[:16]
        self.credential = f"{corp_id}:{digest}"
        self._token_key = f"wecom:token:{self.credential}"
        self._cooldown_key = f"wecom:cooldown:{self.credential}"
        self._bucket = f"wecom:api:{self.credential}"

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

    async def _throttle(self, path: str) -> None:
        if await self.state.get(self._cooldown_key):
            # another caller was told 45009/45033 moments ago: don't make it worse
            raise WeComApiError(45009, "cooling down after a frequency-limit answer", path)
        # shared by every process using this credential (Redis in the scaled mode)
        await wait_for_token(self.state, self._bucket, self.limit.rate, self.limit.burst)

    async def call(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Call an API with the cached token (retries: token once, busy ≤3 with jitter)."""
        refreshed = False
        busy = 0
        while True:
            await self._throttle(path)
            token = await self.access_token()
            try:
                return await self._request(
                    method, path, params={**(params or {}), "access_token": token}, body=body
                )
            except WeComApiError as exc:
                if exc.errcode in TOKEN_ERRORS and not refreshed:
                    log.info("wecom token rejected (%s); refreshing", exc.errcode)
                    refreshed = True
                    await self.invalidate_token()
                    continue
                if exc.errcode in LIMIT_ERRORS:
                    wait = exc.retry_after.total_seconds() if exc.retry_after else 60.0
                    await self.state.set(self._cooldown_key, str(exc.errcode), ttl=wait)
                    log.warning("wecom %s answered %s: cooling down %.0fs", path, exc.errcode, wait)
                elif exc.errcode in BUSY_ERRORS and busy < BUSY_RETRIES:
                    busy += 1
                    await asyncio.sleep(random.uniform(0.1, 0.5) * 2**busy)
                    continue
                raise

    async def get_bytes(self, path: str, params: Mapping[str, str]) -> tuple[bytes, str, str]:
        """Download media (media/get): bytes, declared Content-Type and file name."""
        await self._throttle(path)
        token = await self.access_token()
        async with self.http.get(
            self.base_url + path, params={**params, "access_token": token}, timeout=self.timeout
        ) as resp:
            ctype = resp.headers.get("Content-Type", "")
            disposition = resp.headers.get("Content-Disposition", "")
            data = await resp.read()
        if "json" in ctype or "text/plain" in ctype:
            payload = json.loads(data or b"{}")
            raise WeComApiError(
                int(payload.get("errcode", -1)), str(payload.get("errmsg", "")), path
            )
        filename = ""
        if "filename=" in disposition:
            filename = disposition.split("filename=", 1)[1].strip().strip('"')
        return data, ctype, filename

    async def upload(self, kind: str, data: bytes, filename: str, content_type: str) -> str:
        """media/upload (temporary media, valid 3 days): the media_id."""
        await self._throttle("/cgi-bin/media/upload")
        token = await self.access_token()
        form = aiohttp.FormData()
        form.add_field("media", data, filename=filename, content_type=content_type)
        async with self.http.post(
            self.base_url + "/cgi-bin/media/upload",
            params={"access_token": token, "type": kind},
            data=form,
            timeout=self.timeout,
        ) as resp:
            payload = json.loads(await resp.read() or b"{}")
        errcode = int(payload.get("errcode", 0))
        if errcode:
            raise WeComApiError(errcode, str(payload.get("errmsg", "")), "/cgi-bin/media/upload")
        return str(payload["media_id"])

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
