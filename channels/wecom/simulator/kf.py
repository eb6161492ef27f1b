"""微信客服 (kf) endpoints: sync_msg, send_msg, service_state get/trans (doc 94670,
94677, 94669).

- sync_msg pages by an opaque cursor, returns only the last 3 days, never returns what
  the API sent, and can be told to interleave empty pages with has_more=1 (as WeCom does);
- send_msg only while the session state is 0 (未处理) or 1 (智能助手): else 95018; at
  most 5 messages within 48 h of the customer's last message: else 95001; the optional
  client msgid (≤32 of [0-9a-zA-Z_-]) is echoed back and a repeat is not sent twice;
- send_msg_on_event answers an enter_session welcome_code once, within 20 s (doc copy
  ≈ line 10396; the errcode for a used or expired code is not in our notes [U]: 40058);
- service_state/trans moves 0→1/2/3/4, 1→2/3/4, 2→3/4, 3→4; 3 needs a servicer.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .core import SimApp, api_call, json_body, ok

if TYPE_CHECKING:
    from .core import WeComSimulator

WINDOW = 48 * 3600
BUDGET = 5
HISTORY = 3 * 86400
CALLBACK_TOKEN_TTL = 600
WELCOME_CODE_TTL = 20
_MSGID = re.compile(r"^[0-9A-Za-z_-]{1,32}$")
_ALLOWED = {0: {1, 2, 3, 4}, 1: {2, 3, 4}, 2: {3, 4}, 3: {4}, 4: set()}


@dataclass
class KfSession:
    state: int = 0
    servicer: str = ""
    last_customer_at: float = 0.0
    sent_since: int = 0


@dataclass
class KfSim:
    core: WeComSimulator
    accounts: dict[str, set[str]] = field(default_factory=dict)  # corp → open_kfids
    log: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # corp → messages
    sessions: dict[tuple[str, str, str], KfSession] = field(default_factory=dict)
    sent: list[dict[str, Any]] = field(default_factory=list)
    callback_tokens: dict[str, tuple[str, float]] = field(default_factory=dict)
    empty_pages: int = 0  # answer this many empty has_more=1 pages before each real page
    sync_calls: int = 0
    cursors_seen: list[str] = field(default_factory=list)  # the cursor of every sync_msg call
    max_page: int = 1000  # WeCom's own page size cap (tests make it small)
    # welcome_code → (corp, open_kfid, external_userid, issued at, used)
    welcome_codes: dict[str, tuple[str, str, str, float, bool]] = field(default_factory=dict)
    event_sends: list[dict[str, Any]] = field(default_factory=list)  # send_msg_on_event
    _by_client_msgid: dict[str, str] = field(default_factory=dict)
    _empty_left: int = 0

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/cgi-bin/kf/sync_msg", self._sync)
        router.add_post("/cgi-bin/kf/send_msg", self._send)
        router.add_post("/cgi-bin/kf/send_msg_on_event", self._send_on_event)
        router.add_post("/cgi-bin/kf/service_state/get", self._state_get)
        router.add_post("/cgi-bin/kf/service_state/trans", self._state_trans)
        router.add_post("/cgi-bin/kf/account/list", self._account_list)

    # ---- scenario set-up

    def add_account(self, corp_id: str, open_kfid: str) -> None:
        self.accounts.setdefault(corp_id, set()).add(open_kfid)

    def session(self, corp_id: str, open_kfid: str, external_userid: str) -> KfSession:
        return self.sessions.setdefault((corp_id, open_kfid, external_userid), KfSession())

    def _append(self, corp_id: str, msg: dict[str, Any]) -> str:
        msgid = msg.setdefault("msgid", "from_msgid_" + secrets.token_hex(8))
        msg.setdefault("send_time", int(self.core.clock()))
        self.log.setdefault(corp_id, []).append(msg)
        return str(msgid)

    def issue_token(self, corp_id: str) -> str:
        """The Token a kf_msg_or_event callback carries (valid 10 minutes)."""
        token = "ENC" + secrets.token_urlsafe(24)
        self.callback_tokens[token] = (corp_id, self.core.clock() + CALLBACK_TOKEN_TTL)
        return token

    def customer_writes(
        self,
        corp_id: str,
        open_kfid: str,
        external_userid: str,
        msgtype: str = "text",
        content: dict[str, Any] | None = None,
        *,
        text: str = "",
    ) -> str:
        """A WeChat user writes to the kf account; opens (or re-opens) the session."""
        s = self.session(corp_id, open_kfid, external_userid)
        if s.state == 4:
            s.state, s.servicer = 0, ""
        s.last_customer_at = self.core.clock()
        s.sent_since = 0
        body = content if content is not None else {"content": text}
        return self._append(
            corp_id,
            {
                "open_kfid": open_kfid,
                "external_userid": external_userid,
                "origin": 3,
                "msgtype": msgtype,
                msgtype: body,
            },
        )

    def servicer_writes(
        self, corp_id: str, open_kfid: str, external_userid: str, servicer: str, text: str
    ) -> str:
        """A human servicer answers from the WeCom client (origin 5)."""
        return self._append(
            corp_id,
            {
                "open_kfid": open_kfid,
                "external_userid": external_userid,
                "origin": 5,
                "servicer_userid": servicer,
                "msgtype": "text",
                "text": {"content": text},
            },
        )

    def system_event(self, corp_id: str, event: dict[str, Any]) -> str:
        """An event message (origin 4): enter_session, msg_send_fail, session_status_change…"""
        return self._append(corp_id, {"origin": 4, "msgtype": "event", "event": event})

    def customer_enters(
        self, corp_id: str, open_kfid: str, external_userid: str, scene: str = ""
    ) -> str:
        """A WeChat user opens the kf chat: an enter_session event with a welcome_code."""
        code = "WELCOME" + secrets.token_hex(12)
        self.welcome_codes[code] = (corp_id, open_kfid, external_userid, self.core.clock(), False)
        self.session(corp_id, open_kfid, external_userid)
        self.system_event(
            corp_id,
            {
                "event_type": "enter_session",
                "open_kfid": open_kfid,
                "external_userid": external_userid,
                "scene": scene,
                "welcome_code": code,
            },
        )
        return code

    # ---- endpoints

    @api_call
    async def _send_on_event(self, app: SimApp, body: dict[str, Any]) -> web.Response:
        code = str(body.get("code", ""))
        found = self.welcome_codes.get(code)
        if found is None or found[0] != app.corp_id:
            return self.core.error(40058, "invalid code")
        corp, open_kfid, ext, issued, used = found
        if used or self.core.clock() - issued > WELCOME_CODE_TTL:
            return self.core.error(40058, "code used or expired")
        msgtype = str(body.get("msgtype", ""))
        if msgtype not in ("text", "msgmenu"):
            return self.core.error(40008, "invalid message type")
        self.welcome_codes[code] = (corp, open_kfid, ext, issued, True)
        msgid = str(body.get("msgid") or self.core.next_id("kfevent"))
        self.event_sends.append({"corp_id": corp, "external_userid": ext, **body, "msgid": msgid})
        return ok(msgid=msgid)

    async def _sync(self, request: web.Request) -> web.Response:
        app = self.core.authorise(request)
        if isinstance(app, web.Response):
            return app
        self.sync_calls += 1
        body = await json_body(request) or {}
        token = body.get("token")
        if token is not None:
            issued = self.callback_tokens.get(str(token))
            if issued is None or issued[0] != app.corp_id or issued[1] < self.core.clock():
                return self.core.error(95007, "invalid msg token")
        limit = int(body.get("limit") or 1000)
        if not 1 <= limit <= 1000:
            return self.core.error(44003, "limit must be 1..1000")
        cursor = str(body.get("cursor") or "")
        self.cursors_seen.append(cursor)
        limit = min(limit, self.max_page)
        try:
            start = int(cursor[1:]) if cursor else 0
        except ValueError:
            return self.core.error(95009, "invalid cursor")
        log = self.log.get(app.corp_id, [])
        open_kfid = body.get("open_kfid")
        if open_kfid and open_kfid not in self.accounts.get(app.corp_id, set()):
            return self.core.error(95000, "invalid open_kfid")
        if start < len(log) and self._empty_left > 0:
            self._empty_left -= 1  # WeCom may answer an empty page that still has more
            return ok(next_cursor=f"c{start}", has_more=1, msg_list=[])
        page = log[start : start + limit]
        end = start + len(page)
        self._empty_left = self.empty_pages
        horizon = self.core.clock() - HISTORY
        visible = [
            m
            for m in page
            if m["send_time"] >= horizon
            and (
                not open_kfid
                or m.get("open_kfid", m.get("event", {}).get("open_kfid")) == open_kfid
            )
        ]
        return ok(next_cursor=f"c{end}", has_more=1 if end < len(log) else 0, msg_list=visible)

    @api_call
    async def _send(self, app: SimApp, body: dict[str, Any]) -> web.Response:
        open_kfid, touser = str(body.get("open_kfid", "")), str(body.get("touser", ""))
        if open_kfid not in self.accounts.get(app.corp_id, set()):
            return self.core.error(95000, "invalid open_kfid")
        client_id = body.get("msgid")
        if client_id is not None and not _MSGID.match(str(client_id)):
            return self.core.error(40058, "msgid must be ≤32 of [0-9a-zA-Z_-]")
        if client_id is not None and str(client_id) in self._by_client_msgid:
            return ok(msgid=self._by_client_msgid[str(client_id)])
        s = self.sessions.get((app.corp_id, open_kfid, touser))
        if s is None or s.state not in (0, 1):
            return self.core.error(95018, "send msg session status invalid")
        if self.core.clock() - s.last_customer_at > WINDOW or s.sent_since >= BUDGET:
            return self.core.error(95001, "send msg count limit")
        msgtype = str(body.get("msgtype", ""))
        if msgtype not in (
            "text",
            "image",
            "voice",
            "video",
            "file",
            "link",
            "msgmenu",
            "location",
        ):
            return self.core.error(40008, "invalid message type")
        part = body.get(msgtype) or {}
        if msgtype == "text" and len(str(part.get("content", "")).encode()) > 2048:
            return self.core.error(45002, "content size out of limit")
        if (
            msgtype in ("image", "voice", "video", "file")
            and part.get("media_id") not in self.core.media
        ):
            return self.core.error(40007, "invalid media_id")
        s.sent_since += 1
        msgid = str(client_id) if client_id is not None else self.core.next_id("kfsend")
        if client_id is not None:
            self._by_client_msgid[str(client_id)] = msgid
        self.sent.append({"corp_id": app.corp_id, **body, "msgid": msgid})
        return ok(msgid=msgid)

    async def _account_list(self, request: web.Request) -> web.Response:
        app = self.core.authorise(request)
        if isinstance(app, web.Response):
            return app
        accounts = sorted(self.accounts.get(app.corp_id, set()))
        return ok(account_list=[{"open_kfid": k, "name": k, "avatar": ""} for k in accounts])

    @api_call
    async def _state_get(self, app: SimApp, body: dict[str, Any]) -> web.Response:
        s = self.sessions.get(
            (app.corp_id, str(body.get("open_kfid")), str(body.get("external_userid")))
        )
        if s is None:
            return ok(service_state=4, servicer_userid="")
        return ok(service_state=s.state, servicer_userid=s.servicer)

    @api_call
    async def _state_trans(self, app: SimApp, body: dict[str, Any]) -> web.Response:
        key = (app.corp_id, str(body.get("open_kfid")), str(body.get("external_userid")))
        s = self.sessions.get(key)
        new = int(body.get("service_state", -1))
        if s is None or new not in _ALLOWED.get(s.state, set()):
            return self.core.error(95016, "invalid service state transition")
        servicer = str(body.get("servicer_userid") or "")
        if new == 3 and servicer not in self.core.members[app.corp_id]:
            return self.core.error(95014, "servicer required for state 3")
        s.state, s.servicer = new, servicer if new == 3 else ""
        return ok(msg_code="MSG_CODE_" + secrets.token_hex(6))
