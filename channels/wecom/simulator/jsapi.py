"""JS-SDK tickets and web OAuth, as WeCom answers them.

- get_jsapi_ticket (corp) and ticket/get?type=agent_config (app): a ticket valid
  `expires_in` = 7200 s; repeat calls inside validity return the same ticket (doc 90506);
  ticket/get with another `type` answers 40004-style invalid parameter (we use 40058).
- auth/getuserinfo (doc 91023): a code issued by `issue_code` is valid 5 minutes and
  usable once; anything else answers 40029 invalid code. Members get `userid`,
  customers who open the link outside the corp get `openid` (+ `external_userid`).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

from .core import ok

if TYPE_CHECKING:
    from .core import WeComSimulator

TICKET_TTL = 7200
CODE_TTL = 300.0


@dataclass
class OAuthCode:
    corp_id: str
    userid: str | None
    openid: str | None
    issued_at: float
    used: bool = False


@dataclass
class JsapiSim:
    sim: WeComSimulator
    codes: dict[str, OAuthCode] = field(default_factory=dict)
    # (corp_id, agent_id or 0 for the corp ticket) → (ticket, expires at)
    tickets: dict[tuple[str, int], tuple[str, float]] = field(default_factory=dict)
    ticket_calls: int = 0

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/cgi-bin/get_jsapi_ticket", self._corp_ticket)
        router.add_get("/cgi-bin/ticket/get", self._agent_ticket)
        router.add_get("/cgi-bin/auth/getuserinfo", self._getuserinfo)

    def issue_code(
        self, corp_id: str, userid: str | None = None, *, openid: str | None = None
    ) -> str:
        """The code WeCom would append to the OAuth redirect for this visitor."""
        code = secrets.token_urlsafe(24)
        self.codes[code] = OAuthCode(corp_id, userid, openid, self.sim.clock())
        return code

    def current_ticket(self, corp_id: str, agent_id: int = 0) -> str | None:
        entry = self.tickets.get((corp_id, agent_id))
        return entry[0] if entry and entry[1] > self.sim.clock() else None

    def _ticket(self, corp_id: str, agent_id: int) -> web.Response:
        self.ticket_calls += 1
        now = self.sim.clock()
        entry = self.tickets.get((corp_id, agent_id))
        if entry is None or entry[1] <= now:
            entry = (secrets.token_urlsafe(60), now + TICKET_TTL)
            self.tickets[(corp_id, agent_id)] = entry
        return ok(ticket=entry[0], expires_in=int(entry[1] - now))

    async def _corp_ticket(self, request: web.Request) -> web.Response:
        app = self.sim.authorise(request)
        if isinstance(app, web.Response):
            return app
        return self._ticket(app.corp_id, 0)

    async def _agent_ticket(self, request: web.Request) -> web.Response:
        app = self.sim.authorise(request)
        if isinstance(app, web.Response):
            return app
        if request.query.get("type") != "agent_config":
            return self.sim.error(40058, "invalid type")
        return self._ticket(app.corp_id, app.agent_id)

    async def _getuserinfo(self, request: web.Request) -> web.Response:
        app = self.sim.authorise(request)
        if isinstance(app, web.Response):
            return app
        code = self.codes.get(request.query.get("code", ""))
        if (
            code is None
            or code.used
            or code.corp_id != app.corp_id
            or code.issued_at + CODE_TTL <= self.sim.clock()
        ):
            return self.sim.error(40029, "invalid code")
        code.used = True
        if code.userid is not None:
            return ok(userid=code.userid, user_ticket="")
        return ok(openid=code.openid or "")
