"""The simulator's core: credentials and tokens, the per-credential API limit, error
injection, media (media/upload, media/get) and app messages (message/send).

Behaviour mirrors the documentation (research note anchors-wecom.md, Part B):
- gettoken: 40013 unknown corp, 40001 wrong secret; tokens live 7200 s and repeat calls
  within validity return the same token;
- any call: 41001 no token, 40014 unknown token, 42001 expired token;
- a configurable per-credential API limit (calls per window) answered with 45009;
- message/send: agentid must match the token's app, text ≤ 2048 bytes, unknown members
  listed in `invaliduser` (81013 when none is valid), per-member 30/min and 1,000/h with
  the excess silently DROPPED (as WeCom does), enable_duplicate_check honoured.
"""

from __future__ import annotations

import functools
import hashlib
import json
import secrets
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from aiohttp import BodyPartReader, web

from channels.wecom.crypto import WeComCrypto

if TYPE_CHECKING:
    from .archive import ArchiveSim
    from .contact_way import ContactWaySim
    from .externalcontact import ContactSim
    from .groupchat import GroupChatSim
    from .jsapi import JsapiSim
    from .kf import KfSim


@dataclass
class SimApp:
    """One credential (corp + secret): a self-built app, or the 客户联系/微信客服 secret."""

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
class SimMedia:
    data: bytes
    content_type: str
    filename: str
    kind: str


@dataclass
class _Token:
    app: SimApp
    expires: float


_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def new_app(corp_id: str = "wwsimcorp0001", agent_id: int = 1000002) -> SimApp:
    """A simulated credential with fresh random secrets."""
    return SimApp(
        corp_id=corp_id,
        agent_id=agent_id,
        secret=secrets.token_urlsafe(32),
        token="".join(secrets.choice(_ALPHABET) for _ in range(24)),
        encoding_aes_key="".join(secrets.choice(_ALPHABET) for _ in range(43)),
    )


def error(code: int, msg: str) -> web.Response:
    return web.json_response({"errcode": code, "errmsg": msg})


def ok(**values: Any) -> web.Response:
    return web.json_response({"errcode": 0, "errmsg": "ok", **values})


async def json_body(request: web.Request) -> dict[str, Any] | None:
    try:
        body = json.loads(await request.read() or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


class Endpoints(Protocol):
    """A group of simulator endpoints sharing the core's credentials and limits."""

    core: WeComSimulator


E = TypeVar("E", bound=Endpoints)
ApiHandler = Callable[[E, "SimApp", dict[str, Any]], Awaitable[web.Response]]


def api_call(handler: ApiHandler[E]) -> Callable[[E, web.Request], Awaitable[web.Response]]:
    """An endpoint behind WeCom's access_token check, given the caller's app and its JSON
    body (malformed JSON reads as {} and fails the endpoint's own field checks)."""

    @functools.wraps(handler)
    async def endpoint(self: E, request: web.Request) -> web.Response:
        app = self.core.authorise(request)
        if isinstance(app, web.Response):
            return app
        return await handler(self, app, await json_body(request) or {})

    return endpoint


@dataclass
class WeComSimulator:
    # wall time: kf send_time values are Unix timestamps, and the auto-reply engine
    # checks kf's 48 h reply window against them
    clock: Callable[[], float] = time.time
    api_rate_per_minute: int | None = None  # per credential, answered with 45009
    api_rate_window: float = 60.0  # seconds the limit counts over (short in benchmarks)
    apps: list[SimApp] = field(default_factory=list)
    members: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    sent: list[SentMessage] = field(default_factory=list)
    dropped: list[SentMessage] = field(default_factory=list)  # over the per-member limit
    errors: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    token_calls: int = 0
    calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # path → count
    media: dict[str, SimMedia] = field(default_factory=dict)
    # errcodes to answer on the next calls of a path (e.g. {"/cgi-bin/gettoken": [60020]})
    fail_next: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    _tokens: dict[str, _Token] = field(default_factory=dict)
    _member_sends: dict[tuple[str, int, str], deque[float]] = field(
        default_factory=lambda: defaultdict(deque)
    )
    _api_calls: dict[str, deque[float]] = field(default_factory=lambda: defaultdict(deque))
    _dup_check: dict[str, tuple[float, str]] = field(default_factory=dict)
    _seq: int = 0

    def __post_init__(self) -> None:
        from .archive import ArchiveSim
        from .externalcontact import ContactSim
        from .groupchat import GroupChatSim
        from .jsapi import JsapiSim
        from .kf import KfSim

        self.contacts: ContactSim = ContactSim(self)
        self.kf: KfSim = KfSim(self)
        self.archive: ArchiveSim = ArchiveSim(self)
        self.jsapi: JsapiSim = JsapiSim(self)
        from .contact_way import ContactWaySim

        self.contact_ways: ContactWaySim = ContactWaySim(self)
        self.groups: GroupChatSim = GroupChatSim(self)

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

    def next_id(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}{self._seq}"

    # ---- HTTP app

    def app(self) -> web.Application:
        application = web.Application(client_max_size=30 * 1024 * 1024)
        application.router.add_get("/cgi-bin/gettoken", self._gettoken)
        application.router.add_post("/cgi-bin/message/send", self._message_send)
        application.router.add_post("/cgi-bin/media/upload", self._media_upload)
        application.router.add_get("/cgi-bin/media/get", self._media_get)
        self.contacts.add_routes(application.router)
        self.kf.add_routes(application.router)
        self.archive.add_routes(application.router)
        self.jsapi.add_routes(application.router)
        self.contact_ways.add_routes(application.router)
        self.groups.add_routes(application.router)
        return application

    def error(self, code: int, msg: str) -> web.Response:
        self.errors[code] += 1
        return error(code, msg)

    def _injected(self, path: str) -> web.Response | None:
        pending = self.fail_next.get(path)
        if pending:
            code = pending.pop(0)
            return self.error(code, f"simulated error {code}")
        return None

    async def _gettoken(self, request: web.Request) -> web.Response:
        self.token_calls += 1
        injected = self._injected(request.path)
        if injected is not None:
            return injected
        corp = request.query.get("corpid", "")
        secret = request.query.get("corpsecret", "")
        candidates = [a for a in self.apps if a.corp_id == corp]
        if not candidates:
            return self.error(40013, "invalid corpid")
        app = next((a for a in candidates if a.secret == secret), None)
        if app is None:
            return self.error(40001, "invalid credential, access_token is invalid or not latest")
        for value, tok in self._tokens.items():
            if tok.app is app and tok.expires > self.clock():
                return ok(access_token=value, expires_in=int(tok.expires - self.clock()))
        value = secrets.token_urlsafe(48)
        self._tokens[value] = _Token(app, self.clock() + 7200)
        return ok(access_token=value, expires_in=7200)

    def authorise(self, request: web.Request) -> SimApp | web.Response:
        """The credential behind the request's access_token, or WeCom's error answer."""
        self.calls[request.path] += 1
        value = request.query.get("access_token")
        if not value:
            return self.error(41001, "access_token missing")
        tok = self._tokens.get(value)
        if tok is None:
            return self.error(40014, "invalid access_token")
        if tok.expires <= self.clock():
            return self.error(42001, "access_token expired")
        injected = self._injected(request.path)
        if injected is not None:
            return injected
        if self.api_rate_per_minute is not None:
            window = self._api_calls[tok.app.secret]
            now = self.clock()
            while window and window[0] <= now - self.api_rate_window:
                window.popleft()
            if len(window) >= self.api_rate_per_minute:
                return self.error(45009, "api freq out of limit")
            window.append(now)
        return tok.app

    # ---- media

    async def _media_upload(self, request: web.Request) -> web.Response:
        app = self.authorise(request)
        if isinstance(app, web.Response):
            return app
        kind = request.query.get("type", "")
        if kind not in ("image", "voice", "video", "file"):
            return self.error(40004, "invalid media type")
        reader = await request.multipart()
        part = await reader.next()
        if not isinstance(part, BodyPartReader):
            return self.error(41005, "media data missing")
        data = await part.read()
        limits = {"image": 10 * 1024 * 1024, "voice": 2 * 1024 * 1024, "file": 20 * 1024 * 1024}
        if len(data) < 5 or len(data) > limits.get(kind, 10 * 1024 * 1024):
            return self.error(40005, "invalid media size")
        media_id = self.add_media(
            bytes(data),
            part.headers.get("Content-Type", "application/octet-stream"),
            part.filename or "file",
            kind,
        )
        return ok(type=kind, media_id=media_id, created_at=str(int(time.time())))

    def add_media(self, data: bytes, content_type: str, filename: str, kind: str = "file") -> str:
        media_id = "3" + secrets.token_urlsafe(40)
        self.media[media_id] = SimMedia(data, content_type, filename, kind)
        return media_id

    async def _media_get(self, request: web.Request) -> web.Response:
        app = self.authorise(request)
        if isinstance(app, web.Response):
            return app
        media = self.media.get(request.query.get("media_id", ""))
        if media is None:
            return self.error(40007, "invalid media_id")
        return web.Response(
            body=media.data,
            content_type=media.content_type,
            headers={"Content-Disposition": f'attachment; filename="{media.filename}"'},
        )

    # ---- app messages

    async def _message_send(self, request: web.Request) -> web.Response:
        app = self.authorise(request)
        if isinstance(app, web.Response):
            return app
        body = await json_body(request)
        if body is None:
            return self.error(47001, "data format error")
        if int(body.get("agentid", -1)) != app.agent_id:
            return self.error(40056, "invalid agentid")
        msgtype = body.get("msgtype")
        if msgtype not in ("text", "markdown", "textcard", "image", "file", "news"):
            return self.error(40008, "invalid message type")
        part = body.get(msgtype) or {}
        if msgtype in ("image", "file") and part.get("media_id") not in self.media:
            return self.error(40007, "invalid media_id")
        if msgtype == "textcard" and not (part.get("title") and part.get("url")):
            return self.error(44004, "textcard title/url empty")
        content = str(part.get("content") or part.get("description") or part.get("media_id", ""))
        if msgtype == "text" and len(content.encode()) > 2048:
            return self.error(45002, "content size out of limit")
        users = [u for u in str(body.get("touser", "")).split("|") if u]
        valid = [u for u in users if u in self.members[app.corp_id]]
        invalid = [u for u in users if u not in self.members[app.corp_id]]
        if not valid:
            return self.error(81013, "user & party & tag all invalid")
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        if body.get("enable_duplicate_check"):
            interval = int(body.get("duplicate_check_interval", 1800))
            seen = self._dup_check.get(digest)
            if seen and seen[0] > self.clock() - interval:
                return ok(invaliduser="", msgid=seen[1])
        msgid = self.next_id("sim-msg-")
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
        return ok(invaliduser="|".join(invalid), msgid=msgid)
