"""微信客服 (kf) account adapter: the one path where crmbot may answer customers
automatically (issue 11).

- A `kf_msg_or_event` callback only says "pull now": `verify` keeps its Token (sync_msg
  without one has a strict frequency limit) and wakes this account's poller.
- `pull` is a PullAdapter page of `kf/sync_msg`; bot.pollers stores the page and its
  `next_cursor` in one transaction after EVERY page, including empty pages that still
  say has_more=1, so a restart resumes exactly where the store stopped.
- `send` uses `kf/send_msg` with the outbox key as client `msgid`; 95018 (state
  forbids sending) and 95001 (5 per 48 h used) come back FAILED with that code so the
  auto-reply engine hands the conversation to a human (KF_HANDOFF_CODES).
- Operation `kf_service_state` moves the WeCom session (service_state/trans), e.g. to
  3 with a servicer when a human takes over in the WeCom client.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, ClassVar

import aiohttp

from channels.base import ChannelContext, ConnectionCheck, PullPage, RawRequest
from conversations.types import (
    AccountRef,
    ChannelRules,
    Inbound,
    MessageKind,
    Outbound,
    SendResult,
)

from . import wake
from .account import build_api, build_crypto
from .callback import CallbackEndpoint
from .errors import WeComApiError
from .inbound import parse_xml
from .kf_inbound import to_inbound as kf_items
from .media import download_via_api
from .outbound import MissingMedia, check_api, failed, media_id_for, result_of

log = logging.getLogger(__name__)

PAGE_LIMIT = 1000
TOKEN_TTL = 600  # the callback's Token is valid 10 minutes (doc 94670)
_CLIENT_MSGID = re.compile(r"^[0-9A-Za-z_-]{1,32}$")

# session states (kf/service_state): who answers the customer
WELCOME_OPERATION = "kf_welcome"  # enter_session welcome via send_msg_on_event
WELCOME_CODE_SECONDS = 20
STATE_NEW, STATE_BOT, STATE_QUEUED, STATE_HUMAN, STATE_ENDED = 0, 1, 2, 3, 4


def client_msgid(key: str) -> str:
    """kf send_msg's own idempotency field: ≤32 of [0-9a-zA-Z_-], derived from the key."""
    if _CLIENT_MSGID.match(key):
        return key
    return hashlib.sha256(key.encode()).hexdigest()[:32]


class WeComKfAdapter(CallbackEndpoint):
    kind: ClassVar[str] = "wecom.kf"
    rules: ClassVar[ChannelRules] = ChannelRules(
        auto_reply=True,
        reply_window=timedelta(hours=48),
        replies_per_window=5,
        max_text_bytes=2048,
        marketing=False,
    )

    def __init__(self, account: AccountRef, ctx: ChannelContext) -> None:
        self.account = account
        self.ctx = ctx
        self.crypto = build_crypto(account)  # validates the settings first
        self.corp_id = str(account.config["corp_id"])
        self.open_kfid = str(account.config["open_kfid"])
        self.api = build_api(account, ctx)
        self.cursor_name = f"kf:{self.open_kfid}"

    def _wake_name(self, open_kfid: str) -> str:
        return f"kf:{self.corp_id}:{open_kfid}"

    def _token_key(self, open_kfid: str) -> str:
        return f"wecom:kf:token:{self.corp_id}:{open_kfid}"

    # ---- inbound: the callback is a wake-up

    async def verify(self, request: RawRequest) -> None:
        fields = parse_xml(self.decrypt_request(request))
        if fields.get("Event") == "kf_msg_or_event":
            # the callback may name another kf account of this corp: wake that one
            open_kfid = fields.get("OpenKfId") or self.open_kfid
            if fields.get("Token"):
                await self.ctx.state.set(self._token_key(open_kfid), fields["Token"], ttl=TOKEN_TTL)
            await wake.signal(self.ctx.state, self._wake_name(open_kfid))

    async def pull(self, cursors: Mapping[str, str]) -> PullPage:
        body: dict[str, Any] = {"limit": PAGE_LIMIT, "open_kfid": self.open_kfid}
        cursor = cursors.get(self.cursor_name)
        if cursor:
            body["cursor"] = cursor
        token = await self.ctx.state.get(self._token_key(self.open_kfid))
        if token:
            body["token"] = token
        try:
            data = await self.api.call("POST", "/cgi-bin/kf/sync_msg", body=body)
        except WeComApiError as exc:
            if exc.errcode != 95007 or "token" not in body:
                raise
            # the Token expired: pull without it (slower limit, nothing lost)
            await self.ctx.state.delete(self._token_key(self.open_kfid))
            del body["token"]
            data = await self.api.call("POST", "/cgi-bin/kf/sync_msg", body=body)
        items: list[Inbound] = []
        for item in data.get("msg_list") or []:
            items.extend(kf_items(item))
        return PullPage(
            items=items,
            cursor_name=self.cursor_name,
            cursor=str(data.get("next_cursor") or "") or None,
            has_more=bool(data.get("has_more")),
        )

    async def wait_for_new(self, max_wait: float) -> None:
        await wake.wait(self.ctx.state, self._wake_name(self.open_kfid), max_wait)

    # ---- outbound

    async def _message_body(self, message: Outbound) -> dict[str, Any] | SendResult:
        body: dict[str, Any] = {
            "touser": message.recipient,
            "open_kfid": self.open_kfid,
            "msgid": client_msgid(message.key),
        }
        kind = message.kind
        if kind == MessageKind.TEXT:
            if len(message.text.encode()) > 2048:
                return failed("text_too_long", "文本超过 2048 字节 (text over 2048 bytes)")
            body.update(msgtype="text", text={"content": message.text})
        elif kind in (MessageKind.IMAGE, MessageKind.FILE, MessageKind.VOICE, MessageKind.VIDEO):
            try:
                media_id = await media_id_for(self.api, self.ctx.media, message)
            except MissingMedia as exc:
                return failed("missing_media", str(exc))
            body.update(msgtype=kind.value, **{kind.value: {"media_id": media_id}})
        elif kind == MessageKind.LINK:
            link = dict(message.payload.get("link") or {})
            body.update(
                msgtype="link",
                link={
                    "title": str(link.get("title", message.text))[:128],
                    "desc": str(link.get("desc", ""))[:512],
                    "url": str(link.get("url", "")),
                    "thumb_media_id": str(link.get("thumb_media_id", "")),
                },
            )
        else:
            return failed("unsupported_kind", f"kf messages of kind {kind} are not supported")
        return body

    async def send(self, message: Outbound) -> SendResult:
        try:
            if message.payload.get("operation") == "kf_service_state":
                return await self._trans(message)
            if message.payload.get("operation") == WELCOME_OPERATION:
                return await self._welcome_on_event(message)
            body = await self._message_body(message)
            if isinstance(body, SendResult):
                return body
            data = await self.api.call("POST", "/cgi-bin/kf/send_msg", body=body)
        except (WeComApiError, aiohttp.ClientError, TimeoutError) as exc:
            return result_of(exc)
        return SendResult.sent(str(data.get("msgid") or body["msgid"]))

    async def reconcile(self, message: Outbound) -> SendResult | None:
        """After a timeout: send again under the same client msgid, which WeCom echoes
        back (whether WeCom itself drops the repeat is not documented; research B.3)."""
        return await self.send(message)

    async def _welcome_on_event(self, message: Outbound) -> SendResult:
        """kf/send_msg_on_event: the enter_session welcome, once per code within 20 s."""
        if time.time() > float(message.payload.get("expires_at", 0)):
            return failed(
                "welcome_code_expired",
                "欢迎语时限 (20 秒) 已过 (the 20 s welcome window has passed)",
            )
        data = await self.api.call(
            "POST",
            "/cgi-bin/kf/send_msg_on_event",
            body={
                "code": str(message.payload["code"]),
                "msgid": client_msgid(message.key),
                "msgtype": "text",
                "text": {"content": message.text},
            },
        )
        return SendResult.sent(str(data.get("msgid") or "") or None)

    async def _trans(self, message: Outbound) -> SendResult:
        state = int(message.payload["service_state"])
        body: dict[str, Any] = {
            "open_kfid": self.open_kfid,
            "external_userid": message.recipient,
            "service_state": state,
        }
        if message.payload.get("servicer_userid"):
            body["servicer_userid"] = str(message.payload["servicer_userid"])
        data = await self.api.call("POST", "/cgi-bin/kf/service_state/trans", body=body)
        return SendResult.sent(str(data.get("msg_code") or "") or None)

    async def service_state(self, external_userid: str) -> tuple[int, str]:
        """(service_state, servicer_userid) of a customer's session right now."""
        data = await self.api.call(
            "POST",
            "/cgi-bin/kf/service_state/get",
            body={"open_kfid": self.open_kfid, "external_userid": external_userid},
        )
        return int(data.get("service_state", STATE_ENDED)), str(data.get("servicer_userid", ""))

    async def download_media(self, ref: str) -> tuple[bytes, str]:
        """media/get for a received message's MediaId (media.MediaSource)."""
        return await download_via_api(self.api, ref)

    async def check_connection(self) -> ConnectionCheck:
        check = await check_api(self.api, ("POST", "/cgi-bin/kf/account/list", {"limit": 100}))
        if not check.ok:
            return check
        listed = await self.api.call("POST", "/cgi-bin/kf/account/list", body={"limit": 100})
        if self.open_kfid not in {a.get("open_kfid") for a in listed.get("account_list") or []}:
            return ConnectionCheck(
                False,
                f"该应用管理的客服账号中没有 {self.open_kfid}：请检查 open_kfid，或在微信客服中把该账号"
                f"交给此应用管理 (this app does not manage kf account {self.open_kfid})",
            )
        return check


def service_state_payload(state: int, servicer_userid: str | None = None) -> dict[str, Any]:
    """Outbox payload (queue_operation) that moves a kf session, e.g. to a human (3)."""
    payload: dict[str, Any] = {
        "operation": "kf_service_state",
        "service_state": state,
        "kind": MessageKind.EVENT.value,
        "text": "",
    }
    if servicer_userid:
        payload["servicer_userid"] = servicer_userid
    return payload
