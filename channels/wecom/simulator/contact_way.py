"""「联系我」 contact ways (渠道活码): add/get/update/del/list_contact_way (doc 92228), with
the QR image served by the simulator itself (a real QR PNG made with segno).

Limits kept: `state` ≤ 30 characters, type 1 (single) has exactly one user, ≤ 100 users
per contact way, users must be members of the corp (60111), at most `max_per_corp`
contact ways per corp (500,000 through the API), list_contact_way `limit` ≤ 1000.
Errcodes: 60111 unknown userid (global table); 40058 invalid parameter for the other
refusals, including an unknown config_id — the exact code WeCom uses for those cases is
not in our research notes [U].

`scan` is what a WeChat user's scan does: a single code reaches its one user; a multi
code spreads customers over its users (WeCom's own choice; here in turn).
"""

from __future__ import annotations

import io
import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import segno
from aiohttp import web

from .core import SimApp, api_call, json_body, ok

if TYPE_CHECKING:
    from .core import WeComSimulator

MAX_STATE = 30
MAX_USERS = 100
MAX_LIST = 1000
QR_PATH = "/sim/contact_way/qr/"


@dataclass
class SimContactWay:
    corp_id: str
    config_id: str
    type: int
    scene: int
    state: str
    user: list[str]
    skip_verify: bool = True
    remark: str = ""
    style: int = 1
    qr_code: str = ""
    create_time: int = 0
    scans: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "config_id": self.config_id,
            "type": self.type,
            "scene": self.scene,
            "style": self.style,
            "remark": self.remark,
            "skip_verify": self.skip_verify,
            "state": self.state,
            "qr_code": self.qr_code,
            "user": list(self.user),
            "party": [],
            "is_temp": False,
        }


@dataclass
class ContactWaySim:
    core: WeComSimulator
    ways: dict[str, SimContactWay] = field(default_factory=dict)
    max_per_corp: int = 500_000
    updates: list[dict[str, Any]] = field(default_factory=list)  # update_contact_way bodies
    _per_corp: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add_routes(self, router: web.UrlDispatcher) -> None:
        p = "/cgi-bin/externalcontact/"
        router.add_post(p + "add_contact_way", self._add)
        router.add_post(p + "get_contact_way", self._get)
        router.add_post(p + "update_contact_way", self._update)
        router.add_post(p + "del_contact_way", self._del)
        router.add_post(p + "list_contact_way", self._list)
        router.add_get(QR_PATH + "{config_id}.png", self._qr_png)

    # ---- what happens in the WeChat client

    def by_state(self, corp_id: str, state: str) -> SimContactWay:
        return next(w for w in self.ways.values() if w.corp_id == corp_id and w.state == state)

    def scan(self, way: SimContactWay) -> str:
        """The member a scanning customer reaches."""
        userid = way.user[way.scans % len(way.user)]
        way.scans += 1
        return userid

    # ---- endpoints

    def _refuse(self, msg: str) -> web.Response:
        return self.core.error(40058, msg)

    def _check(self, app: SimApp, body: dict[str, Any], way_type: int) -> web.Response | None:
        state = body.get("state", "")
        if not isinstance(state, str) or len(state) > MAX_STATE:
            return self._refuse("invalid state: at most 30 characters")
        users = body.get("user")
        if users is not None:
            if not isinstance(users, list) or not users or len(users) > MAX_USERS:
                return self._refuse("invalid user list")
            if way_type == 1 and len(users) != 1:
                return self._refuse("type 1 (single) needs exactly one user")
            unknown = [u for u in users if u not in self.core.members[app.corp_id]]
            if unknown:
                return self.core.error(60111, f"invalid userid {unknown[0]}")
        return None

    def _way(self, app: SimApp, body: dict[str, Any]) -> SimContactWay | None:
        way = self.ways.get(str(body.get("config_id", "")))
        return way if way is not None and way.corp_id == app.corp_id else None

    async def _add(self, request: web.Request) -> web.Response:
        app = self.core.authorise(request)
        if isinstance(app, web.Response):
            return app
        body = await json_body(request)
        if body is None:
            return self.core.error(47001, "data format error")
        way_type, scene = body.get("type"), body.get("scene")
        if way_type not in (1, 2) or scene not in (1, 2):
            return self._refuse("type must be 1 or 2 and scene 1 or 2")
        refused = self._check(app, body, way_type)
        if refused is not None:
            return refused
        if not body.get("user"):
            return self._refuse("user or party required")
        if self._per_corp[app.corp_id] >= self.max_per_corp:
            return self._refuse("contact way count limit reached")
        config_id = secrets.token_hex(16)
        origin = f"{request.scheme}://{request.host}"
        way = SimContactWay(
            corp_id=app.corp_id,
            config_id=config_id,
            type=int(way_type),
            scene=int(scene),
            state=str(body.get("state", "")),
            user=list(body["user"]),
            skip_verify=bool(body.get("skip_verify", True)),
            remark=str(body.get("remark", "")),
            style=int(body.get("style", 1)),
            qr_code=f"{origin}{QR_PATH}{config_id}.png" if scene == 2 else "",
            create_time=int(self.core.clock()),
        )
        self.ways[config_id] = way
        self._per_corp[app.corp_id] += 1
        return ok(config_id=config_id, **({"qr_code": way.qr_code} if way.qr_code else {}))

    async def _get(self, request: web.Request) -> web.Response:
        app = self.core.authorise(request)
        if isinstance(app, web.Response):
            return app
        way = self._way(app, await json_body(request) or {})
        if way is None:
            return self._refuse("invalid config_id")
        return ok(contact_way=way.as_json())

    @api_call
    async def _update(self, app: SimApp, body: dict[str, Any]) -> web.Response:
        way = self._way(app, body)
        if way is None:
            return self._refuse("invalid config_id")
        refused = self._check(app, body, way.type)
        if refused is not None:
            return refused
        if "user" in body:
            way.user = list(body["user"])
            way.scans = 0
        for name in ("remark", "state"):
            if name in body:
                setattr(way, name, str(body[name]))
        if "skip_verify" in body:
            way.skip_verify = bool(body["skip_verify"])
        self.updates.append(body)
        return ok()

    async def _del(self, request: web.Request) -> web.Response:
        app = self.core.authorise(request)
        if isinstance(app, web.Response):
            return app
        way = self._way(app, await json_body(request) or {})
        if way is None:
            return self._refuse("invalid config_id")
        del self.ways[way.config_id]
        self._per_corp[app.corp_id] -= 1
        return ok()

    @api_call
    async def _list(self, app: SimApp, body: dict[str, Any]) -> web.Response:
        limit = int(body.get("limit", 100))
        if not 1 <= limit <= MAX_LIST:
            return self._refuse("limit must be 1..1000")
        start = int(body.get("start_time", 0))
        end = int(body.get("end_time", self.core.clock()))
        ids = [
            w.config_id
            for w in self.ways.values()
            if w.corp_id == app.corp_id and start <= w.create_time <= end
        ]
        offset = int(body.get("cursor") or 0)
        page = ids[offset : offset + limit]
        more = offset + limit < len(ids)
        return ok(
            contact_way=[{"config_id": c} for c in page],
            next_cursor=str(offset + limit) if more else "",
        )

    async def _qr_png(self, request: web.Request) -> web.Response:
        way = self.ways.get(request.match_info["config_id"])
        if way is None:
            raise web.HTTPNotFound()
        out = io.BytesIO()
        # what the real code encodes is WeCom's own add-contact link; any unique text
        # makes a scannable stand-in
        segno.make(f"https://work.weixin.qq.com/sim/contact_way/{way.config_id}").save(
            out, kind="png", scale=6, border=2
        )
        return web.Response(body=out.getvalue(), content_type="image/png")
