"""JS-SDK support for pages inside the WeCom client (the chat sidebar, 聊天工具栏).

- Two tickets: the corp's `jsapi_ticket` (get_jsapi_ticket, for `wx.config`) and the
  app's `agent_config` ticket (ticket/get?type=agent_config, for `wx.agentConfig`).
  Both live 7200 s and their endpoints are frequency-limited (doc 90506: 600 per hour
  per corp, 100 per hour per app), so each is cached in SharedState — shared by every
  process — refreshed a few minutes before expiry by one caller under a lock.
- The signature (doc 90506 / 附录1 JS-SDK使用权限签名算法): SHA-1 over
  `jsapi_ticket=…&noncestr=…&timestamp=…&url=…`, the URL without its `#fragment`.
- OAuth (doc 91022 构造网页授权链接, 91023 auth/getuserinfo): the code WeCom appends to
  our redirect becomes the member's userid; a code is valid 5 minutes and once.
- groupchat/get (doc 92122) for the members of a customer group shown in the sidebar.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote, urlsplit, urlunsplit

from .api import WeComApi

log = logging.getLogger(__name__)

TICKET_MARGIN = 300  # seconds: refresh early, as for access tokens
OAUTH_AUTHORIZE = "https://open.weixin.qq.com/connect/oauth2/authorize"
TicketKind = Literal["corp", "agent"]


def strip_fragment(url: str) -> str:
    """The page URL as WeCom signs it: everything before `#`."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, parts.query, ""))


def jsapi_signature(ticket: str, noncestr: str, timestamp: int, url: str) -> str:
    """The JS-SDK permission signature (hex SHA-1); the fragment of `url` is dropped."""
    plain = (
        f"jsapi_ticket={ticket}&noncestr={noncestr}&timestamp={timestamp}&url={strip_fragment(url)}"
    )
    # SHA-1 is what the JS-SDK protocol prescribes, not our choice
    return hashlib.sha1(plain.encode()).hexdigest()  # noqa: S324


@dataclass(frozen=True)
class SignedConfig:
    """What `wx.config` (kind corp) or `wx.agentConfig` (kind agent) needs besides
    the jsApiList the page chooses."""

    corp_id: str
    agent_id: int
    timestamp: int
    nonce: str
    signature: str

    def as_wx_config(self) -> dict[str, Any]:
        return {
            "appId": self.corp_id,
            "timestamp": self.timestamp,
            "nonceStr": self.nonce,
            "signature": self.signature,
        }

    def as_agent_config(self) -> dict[str, Any]:
        return {
            "corpid": self.corp_id,
            "agentid": self.agent_id,
            "timestamp": self.timestamp,
            "nonceStr": self.nonce,
            "signature": self.signature,
        }


@dataclass(frozen=True)
class OAuthIdentity:
    """Who opened the page: a member (userid) or, outside the corp, an openid."""

    userid: str | None
    openid: str | None = None
    external_userid: str | None = None


@dataclass(frozen=True)
class GroupMember:
    userid: str  # a member's userid, or a customer's external_userid
    external: bool  # type 2 = 外部联系人
    name: str
    join_time: int


@dataclass(frozen=True)
class GroupChat:
    chat_id: str
    name: str
    owner: str
    members: tuple[GroupMember, ...]


def oauth_url(corp_id: str, agent_id: int, redirect_uri: str, state: str) -> str:
    """The silent (snsapi_base) authorisation link; WeCom redirects back with ?code=."""
    return (
        f"{OAUTH_AUTHORIZE}?appid={quote(corp_id, safe='')}"
        f"&redirect_uri={quote(redirect_uri, safe='')}&response_type=code"
        f"&scope=snsapi_base&state={quote(state, safe='')}&agentid={agent_id}#wechat_redirect"
    )


class JsApi:
    """Tickets, signatures, OAuth and group look-ups for one self-built app."""

    def __init__(
        self,
        api: WeComApi,
        agent_id: int,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.api = api
        self.corp_id = api.corp_id
        self.agent_id = agent_id
        self._clock = clock
        base = f"wecom:jsapi:{api.credential}"
        self._keys: Mapping[TicketKind, str] = {
            "corp": f"{base}:corp",
            "agent": f"{base}:agent:{agent_id}",
        }

    async def ticket(self, kind: TicketKind, *, force: bool = False) -> str:
        """The cached ticket; one caller across all processes fetches a new one."""
        key = self._keys[kind]
        if not force:
            cached = await self.api.state.get(key)
            if cached:
                return cached
        async with self.api.state.lock(key + ":refresh", ttl=30):
            if not force:
                cached = await self.api.state.get(key)
                if cached:  # another caller refreshed while we waited for the lock
                    return cached
            if kind == "corp":
                data = await self.api.call("GET", "/cgi-bin/get_jsapi_ticket")
            else:
                data = await self.api.call(
                    "GET", "/cgi-bin/ticket/get", params={"type": "agent_config"}
                )
            ticket = str(data["ticket"])
            ttl = max(60, int(data.get("expires_in", 7200)) - TICKET_MARGIN)
            await self.api.state.set(key, ticket, ttl=ttl)
            log.info("wecom %s jsapi ticket refreshed corp=%s ttl=%ss", kind, self.corp_id, ttl)
            return ticket

    async def sign(self, kind: TicketKind, url: str) -> SignedConfig:
        """A fresh nonce and timestamp signed with the `kind` ticket for `url`."""
        ticket = await self.ticket(kind)
        timestamp = int(self._clock())
        nonce = secrets.token_urlsafe(12)
        return SignedConfig(
            self.corp_id,
            self.agent_id,
            timestamp,
            nonce,
            jsapi_signature(ticket, nonce, timestamp, url),
        )

    def authorize_url(self, redirect_uri: str, state: str) -> str:
        return oauth_url(self.corp_id, self.agent_id, redirect_uri, state)

    async def identity_for_code(self, code: str) -> OAuthIdentity:
        """auth/getuserinfo; raises WeComApiError (40029 for a bad or used code)."""
        data = await self.api.call("GET", "/cgi-bin/auth/getuserinfo", params={"code": code})
        # the old user/getuserinfo answered in PascalCase; some corps still see it
        userid = data.get("userid") or data.get("UserId")
        openid = data.get("openid") or data.get("OpenId")
        return OAuthIdentity(
            userid=str(userid) if userid else None,
            openid=str(openid) if openid else None,
            external_userid=str(data["external_userid"]) if data.get("external_userid") else None,
        )

    async def upload_media(self, kind: str, data: bytes, filename: str, mime: str) -> str:
        """media/upload (temporary, 3 days): the media id sendChatMessage needs."""
        return await self.api.upload(kind, data, filename, mime)

    async def group_chat(self, chat_id: str) -> GroupChat:
        """groupchat/get: a customer group's name, owner and members."""
        data = await self.api.call(
            "POST",
            "/cgi-bin/externalcontact/groupchat/get",
            body={"chat_id": chat_id, "need_name": 1},
        )
        chat = data.get("group_chat") or {}
        members = tuple(
            GroupMember(
                userid=str(m.get("userid", "")),
                external=int(m.get("type", 1)) == 2,
                name=str(m.get("name") or m.get("group_nickname") or ""),
                join_time=int(m.get("join_time", 0)),
            )
            for m in chat.get("member_list", [])
        )
        return GroupChat(
            chat_id=str(chat.get("chat_id", chat_id)),
            name=str(chat.get("name", "")),
            owner=str(chat.get("owner", "")),
            members=members,
        )
