"""会话内容存档 account adapter: a read-only PullAdapter by `seq` (issue 11).

- `pull` asks the Finance SDK for records after the stored `archive:seq`, decrypts each
  record's random key with the private key of its `publickey_ver`, lets the SDK decrypt
  the message, and returns timeline entries; bot.pollers stores them with the new seq
  in one transaction. A missing/wrong key or an expired licence raises a readable error
  and the seq stays where it is, so nothing is skipped once the operator fixes it.
- A `msgaudit_notify` callback (at most every 15 s, doc 95039) wakes the poller; the
  poller also pulls on its own timer.
- There is no API to answer on this path: rules are auto_reply=False, read_only=True,
  and `send` refuses.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

import aiohttp

from channels.base import ChannelContext, ConnectionCheck, PullPage, RawRequest
from channels.wecom import wake
from channels.wecom.account import api_base, build_crypto
from channels.wecom.callback import CallbackEndpoint
from channels.wecom.inbound import parse_xml
from channels.wecom.outbound import failed
from conversations.types import AccountRef, ChannelRules, Inbound, Outbound, SendResult

from .decode import key_mismatch, load_private_keys, random_key, to_inbound
from .native import NativeFinanceSdk
from .sdk import KEY_MISMATCH, ArchiveConfigError, ArchiveError, FinanceSdk
from .simulated import SimulatedFinanceSdk

CURSOR = "archive:seq"
PAGE_LIMIT = 1000  # GetChatData's maximum
TIMEOUT = 10
MAX_MEDIA_BYTES = 100 * 1024 * 1024


def build_sdk(account: AccountRef, ctx: ChannelContext, http: aiohttp.ClientSession) -> FinanceSdk:
    cfg = account.config
    secret = account.secrets.get("secret", "")
    if cfg.get("sandbox") or cfg.get("finance_sdk") == "simulator":
        return SimulatedFinanceSdk(http, api_base(cfg, ctx), str(cfg["corp_id"]), secret)
    return NativeFinanceSdk(
        str(cfg.get("finance_sdk_path") or ""),
        str(cfg["corp_id"]),
        secret,
        proxy=str(cfg.get("proxy") or ""),
        passwd=account.secrets.get("proxy_password", ""),
    )


class WeComArchiveAdapter(CallbackEndpoint):
    kind: ClassVar[str] = "wecom.archive"
    rules: ClassVar[ChannelRules] = ChannelRules(auto_reply=False, read_only=True, marketing=False)

    def __init__(
        self, account: AccountRef, ctx: ChannelContext, sdk: FinanceSdk | None = None
    ) -> None:
        self.account = account
        self.ctx = ctx
        self.corp_id = str(account.config["corp_id"])
        self.crypto = build_crypto(account)
        self.sdk = sdk or build_sdk(account, ctx, ctx.http)
        self._keys_raw = account.secrets.get("private_keys")
        self._wake_name = f"archive:{account.id}"

    async def verify(self, request: RawRequest) -> None:
        fields = parse_xml(self.decrypt_request(request))
        if fields.get("Event") == "msgaudit_notify":
            await wake.signal(self.ctx.state, self._wake_name)

    async def pull(self, cursors: Mapping[str, str]) -> PullPage:
        keys = load_private_keys(self._keys_raw)
        seq = int(cursors.get(CURSOR) or 0)
        answer = json.loads(await self.sdk.get_chat_data(seq, PAGE_LIMIT, TIMEOUT))
        errcode = int(answer.get("errcode", 0))
        if errcode:
            raise ArchiveError(errcode, str(answer.get("errmsg", "")))
        records: list[dict[str, Any]] = list(answer.get("chatdata") or [])
        items: list[Inbound] = []
        last = seq
        for record in records:
            version = int(record.get("publickey_ver", 0))
            key = random_key(keys, version, str(record["encrypt_random_key"]))
            try:
                plain = await self.sdk.decrypt_data(key, str(record["encrypt_chat_msg"]))
            except ArchiveError as exc:
                if exc.code == KEY_MISMATCH:  # a wrong key can still "decrypt" (see decode.py)
                    raise key_mismatch(version) from exc
                raise
            items.extend(to_inbound(json.loads(plain), int(record["seq"])))
            last = max(last, int(record["seq"]))
        return PullPage(
            items=items,
            cursor_name=CURSOR,
            cursor=str(last) if records else None,
            has_more=len(records) >= PAGE_LIMIT,
        )

    async def wait_for_new(self, max_wait: float) -> None:
        await wake.wait(self.ctx.state, self._wake_name, max_wait)

    async def download_media(self, ref: str) -> tuple[bytes, str]:
        """GetMediaData in chunks until the SDK says finished."""
        sdkfileid = ref.removeprefix("sdk:")
        index, parts, size = "", [], 0
        while True:
            chunk = await self.sdk.get_media_data(sdkfileid, index, TIMEOUT)
            parts.append(chunk.data)
            size += len(chunk.data)
            if size > MAX_MEDIA_BYTES:
                raise ArchiveError(10005, "archived file over 100 MB")
            if chunk.finished:
                return b"".join(parts), ""
            index = chunk.next_index

    async def send(self, message: Outbound) -> SendResult:
        return failed(
            "read_only",
            "会话存档只读，无法从这里回复客户 (the message archive is read-only: answer in WeCom)",
        )

    async def check_connection(self) -> ConnectionCheck:
        try:
            load_private_keys(self._keys_raw)
            answer = json.loads(await self.sdk.get_chat_data(0, 1, TIMEOUT))
            if int(answer.get("errcode", 0)):
                raise ArchiveError(int(answer["errcode"]), str(answer.get("errmsg", "")))
        except ArchiveError as exc:
            return ConnectionCheck(False, exc.readable, {"code": exc.code})
        except ArchiveConfigError as exc:
            return ConnectionCheck(False, str(exc))
        except (aiohttp.ClientError, TimeoutError) as exc:
            return ConnectionCheck(False, f"无法连接会话存档服务 (cannot reach the archive): {exc}")
        return ConnectionCheck(True, "连接正常 (connected)")
