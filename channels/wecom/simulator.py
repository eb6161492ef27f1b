"""A WeCom API simulator: the endpoints crmbot calls, with WeCom's JSON shapes, error
codes and limits, and a client that posts correctly encrypted, signed callbacks.

Used by the tests and by sandbox mode (`make run` without credentials). It listens on
127.0.0.1 only. Behaviour mirrors the documentation (research note anchors-wecom.md):
- gettoken: 40013 unknown corp, 40001 wrong secret; tokens live 7200 s;
- any call: 41001 no token, 40014 unknown token, 42001 expired token;
- message/send: agentid must match the token's app, text ≤ 2048 bytes, unknown members
  listed in `invaliduser` (81013 when none is valid), per-member 30/min and 1,000/h with
  the excess silently DROPPED (as WeCom does), enable_duplicate_check honoured;
- a configurable per-app API rate answered with 45009.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from .crypto import WeComCrypto, signature


@dataclass
class SimApp:
    corp_id: str
    agent_id: int
    secret: str
    token: str
    encoding_aes_key: str

    @property
    def crypto(self) -> WeComCrypto:
        return WeComCrypto(self.token, self.encoding_aes_key, self.corp_id)


@dataclass
class SentMessage:
    corp_id: str
    agent_id: int
    touser: str
    msgtype: str
    content: str
    msgid: str
    body: dict[str, Any]


@dataclass
class _Token:
    app: SimApp
    expires: float


def new_app(corp_id: str = "wwsimcorp0001", agent_id: int = 1000002) -> SimApp:
    """A simulated app with fresh random credentials."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return SimApp(
        corp_id=corp_id,
        agent_id=agent_id,
        secret=secrets.token_urlsafe(32),
        token="".join(secrets.choice(alphabet) for _ in range(24)),
        encoding_aes_key="".join(secrets.choice(alphabet) for _ in range(43)),
    )


@dataclass
class WeComSimulator:
    clock: Callable[[], float] = time.monotonic
    api_rate_per_minute: int | None = None  # per app, answered with 45009 when exceeded
    apps: list[SimApp] = field(default_factory=list)
    members: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    sent: list[SentMessage] = field(default_factory=list)
    dropped: list[SentMessage] = field(default_factory=list)  # over the per-member limit
    errors: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    token_calls: int = 0
    _tokens: dict[str, _Token] = field(default_factory=dict)
    _member_sends: dict[tuple[str, int, str], deque[float]] = field(
        default_factory=lambda: defaultdict(deque)
    )
    _api_calls: dict[tuple[str, int], deque[float]] = field(
        default_factory=lambda: defaultdict(deque)
    )
    _dup_check: dict[str, tuple[float, str]] = field(default_factory=dict)
    _seq: int = 0

    # ---- set-up

    def add_app(self, app: SimApp) -> SimApp:
        self.apps.append(app)
        return app

    def add_member(self, corp_id: str, userid: str) -> None:
        self.members[corp_id].add(userid)

    def expire_tokens(self) -> None:
        """Make every issued token expired (next call answers 42001)."""
        for tok in self._tokens.values():
            tok.expires = self.clock() - 1

    # ---- HTTP app

    def app(self) -> web.Application:
        application = web.Application()
        application.router.add_get("/cgi-bin/gettoken", self._gettoken)
        application.router.add_post("/cgi-bin/message/send", self._message_send)
        return application

    def _error(self, code: int, msg: str) -> web.Response:
        self.errors[code] += 1
        return web.json_response({"errcode": code, "errmsg": msg})

    async def _gettoken(self, request: web.Request) -> web.Response:
        self.token_calls += 1
        corp = request.query.get("corpid", "")
        secret = request.query.get("corpsecret", "")
        candidates = [a for a in self.apps if a.corp_id == corp]
        if not candidates:
            return self._error(40013, "invalid corpid")
        app = next((a for a in candidates if a.secret == secret), None)
        if app is None:
            return self._error(40001, "invalid credential, access_token is invalid or not latest")
        # repeat calls within validity return the same token (documented behaviour)
        for value, tok in self._tokens.items():
            if tok.app is app and tok.expires > self.clock():
                return web.json_response(
                    {
                        "errcode": 0,
                        "errmsg": "ok",
                        "access_token": value,
                        "expires_in": int(tok.expires - self.clock()),
                    }
                )
        value = secrets.token_urlsafe(48)
        self._tokens[value] = _Token(app, self.clock() + 7200)
        return web.json_response(
            {"errcode": 0, "errmsg": "ok", "access_token": value, "expires_in": 7200}
        )

    def _authorise(self, request: web.Request) -> SimApp | web.Response:
        value = request.query.get("access_token")
        if not value:
            return self._error(41001, "access_token missing")
        tok = self._tokens.get(value)
        if tok is None:
            return self._error(40014, "invalid access_token")
        if tok.expires <= self.clock():
            return self._error(42001, "access_token expired")
        if self.api_rate_per_minute is not None:
            window = self._api_calls[(tok.app.corp_id, tok.app.agent_id)]
            now = self.clock()
            while window and window[0] <= now - 60:
                window.popleft()
            if len(window) >= self.api_rate_per_minute:
                return self._error(45009, "api freq out of limit")
            window.append(now)
        return tok.app

    async def _message_send(self, request: web.Request) -> web.Response:
        app = self._authorise(request)
        if isinstance(app, web.Response):
            return app
        try:
            body = json.loads(await request.read())
        except (json.JSONDecodeError, UnicodeDecodeError):
            return self._error(47001, "data format error")
        if int(body.get("agentid", -1)) != app.agent_id:
            return self._error(40056, "invalid agentid")
        msgtype = body.get("msgtype")
        if msgtype not in ("text", "markdown", "textcard", "image", "file", "news"):
            return self._error(40008, "invalid message type")
        content = str((body.get(msgtype) or {}).get("content", ""))
        if msgtype == "text" and len(content.encode()) > 2048:
            return self._error(45002, "content size out of limit")
        users = [u for u in str(body.get("touser", "")).split("|") if u]
        valid = [u for u in users if u in self.members[app.corp_id]]
        invalid = [u for u in users if u not in self.members[app.corp_id]]
        if not valid:
            return self._error(81013, "user & party & tag all invalid")
        if body.get("enable_duplicate_check"):
            digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
            interval = int(body.get("duplicate_check_interval", 1800))
            seen = self._dup_check.get(digest)
            if seen and seen[0] > self.clock() - interval:
                return web.json_response(
                    {"errcode": 0, "errmsg": "ok", "invaliduser": "", "msgid": seen[1]}
                )
        self._seq += 1
        msgid = f"sim-msg-{self._seq}"
        now = self.clock()
        for user in valid:
            record = SentMessage(app.corp_id, app.agent_id, user, msgtype, content, msgid, body)
            window = self._member_sends[(app.corp_id, app.agent_id, user)]
            while window and window[0] <= now - 3600:
                window.popleft()
            last_minute = sum(1 for t in window if t > now - 60)
            if last_minute >= 30 or len(window) >= 1000:
                self.dropped.append(record)  # WeCom drops silently and still answers ok
            else:
                window.append(now)
                self.sent.append(record)
        if body.get("enable_duplicate_check"):
            self._dup_check[digest] = (now, msgid)
        return web.json_response(
            {"errcode": 0, "errmsg": "ok", "invaliduser": "|".join(invalid), "msgid": msgid}
        )


# ---- the provider's side of callbacks


def text_message_xml(
    app: SimApp, from_user: str, content: str, msg_id: int, create_time: int | None = None
) -> bytes:
    created = create_time if create_time is not None else int(time.time())
    return (
        f"<xml><ToUserName><![CDATA[{app.corp_id}]]></ToUserName>"
        f"<FromUserName><![CDATA[{from_user}]]></FromUserName>"
        f"<CreateTime>{created}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId>"
        f"<AgentID>{app.agent_id}</AgentID></xml>"
    ).encode()


@dataclass(frozen=True)
class SignedCallback:
    query: dict[str, str]
    body: bytes

    def url(self, base: str) -> str:
        return f"{base}?{urlencode(self.query)}"


def sign_callback(
    app: SimApp, plaintext: bytes, *, timestamp: int | None = None, nonce: str | None = None
) -> SignedCallback:
    """Encrypt and sign a callback exactly as WeCom does (envelope with AgentID)."""
    ts = str(timestamp if timestamp is not None else int(time.time()))
    nonce = nonce or str(secrets.randbelow(10**10))
    encrypt, sig = app.crypto.encrypt_envelope(plaintext, ts, nonce)
    body = (
        f"<xml><ToUserName><![CDATA[{app.corp_id}]]></ToUserName>"
        f"<AgentID><![CDATA[{app.agent_id}]]></AgentID>"
        f"<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
    ).encode()
    return SignedCallback({"msg_signature": sig, "timestamp": ts, "nonce": nonce}, body)


async def post_callback(
    http: aiohttp.ClientSession, url: str, callback: SignedCallback
) -> tuple[int, bytes]:
    """POST a signed callback the way WeCom would; returns (status, body)."""
    async with http.post(
        callback.url(url), data=callback.body, headers={"Content-Type": "text/xml"}
    ) as resp:
        return resp.status, await resp.read()


async def verify_url(http: aiohttp.ClientSession, url: str, app: SimApp) -> bool:
    """WeCom's GET URL check: the answer must be exactly the decrypted echostr."""
    expected = str(secrets.randbelow(10**19))
    signed = sign_callback(app, expected.encode())
    encrypt = app.crypto.encrypt(expected.encode())
    query = dict(signed.query, echostr=encrypt)
    query["msg_signature"] = signature(app.token, query["timestamp"], query["nonce"], encrypt)
    async with http.get(f"{url}?{urlencode(query)}") as resp:
        return resp.status == 200 and await resp.read() == expected.encode()
