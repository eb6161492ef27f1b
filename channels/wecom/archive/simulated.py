"""The FinanceSdk over HTTP to the WeCom simulator's archive double (tests, sandbox):
the same calls and error codes as the native SDK, so the adapter cannot tell them apart."""

from __future__ import annotations

import base64
import json

import aiohttp

from .sdk import ArchiveError, MediaChunk


class SimulatedFinanceSdk:
    def __init__(
        self, http: aiohttp.ClientSession, base_url: str, corp_id: str, secret: str
    ) -> None:
        self.http = http
        self.base = base_url.rstrip("/") + "/finance"
        self.auth = {"corpid": corp_id, "secret": secret}

    async def _post(self, call: str, body: dict[str, object]) -> dict[str, object]:
        async with self.http.post(f"{self.base}/{call}", json={**self.auth, **body}) as resp:
            data: dict[str, object] = json.loads(await resp.read())
        rc = int(str(data.get("rc", 0)))
        if rc != 0:
            raise ArchiveError(rc)
        return data

    async def get_chat_data(self, seq: int, limit: int, sdk_timeout: int) -> str:
        data = await self._post(
            "get_chat_data", {"seq": seq, "limit": limit, "timeout": sdk_timeout}
        )
        return str(data["slice"])

    async def decrypt_data(self, random_key: str, encrypt_chat_msg: str) -> str:
        data = await self._post("decrypt_data", {"key": random_key, "msg": encrypt_chat_msg})
        return str(data["slice"])

    async def get_media_data(self, sdkfileid: str, index: str, sdk_timeout: int) -> MediaChunk:
        data = await self._post("get_media_data", {"sdkfileid": sdkfileid, "index": index})
        return MediaChunk(
            base64.b64decode(str(data["data"])), str(data["next_index"]), bool(data["finished"])
        )
