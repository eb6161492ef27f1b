"""客户群 (customer group) endpoints and the change_external_chat callbacks that go with
them, for tests and sandbox mode.

Shapes follow the docs: 92120 groupchat/list, 92122 groupchat/get, 92366
group_welcome_template/*, 92133 groupchat/statistic (+ statistic_group_by_day), 92127
groupchat/transfer and 95703 groupchat/onjob_transfer, 92130 change_external_chat.
Limits kept: list limit 1 ~ 1000 with an opaque cursor, owner_filter ≤ 100 userids,
statistic days within the last 180 days and ≤ 30 days per by-day query, chat_id_list
1 ~ 100 per hand-over, 300 groups per new owner per day, an on-job group handed over at
most twice in 90 days, template text ≤ 4000 bytes.
The errcode WeCom gives for the two hand-over limits is not in the docs we read (90503
is assumed; research note: unverified): `limit_errcode` makes it configurable.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from .callbacks import event_xml, push
from .core import SimApp, api_call, json_body, ok

if TYPE_CHECKING:
    from .core import WeComSimulator

P = "/cgi-bin/externalcontact/"
DAY = 86400
STAT_HORIZON_DAYS = 180
BY_DAY_MAX_DAYS = 30
TRANSFERS_PER_OWNER_PER_DAY = 300
ONJOB_TRANSFERS_PER_90_DAYS = 2
TEMPLATE_TEXT_LIMIT = 4000


@dataclass
class SimGroupMember:
    userid: str
    type: int  # 1 staff, 2 external contact
    join_time: int
    join_scene: int = 1  # 1 invited directly, 2 invited by link, 3 scanned the group QR code
    invitor: str = ""
    name: str = ""
    unionid: str = ""
    group_nickname: str = ""


@dataclass
class SimGroup:
    chat_id: str
    owner: str
    name: str = ""
    notice: str = ""
    create_time: int = 0
    members: dict[str, SimGroupMember] = field(default_factory=dict)
    admins: list[str] = field(default_factory=list)
    status: int = 0  # 0 normal, 1 owner resigned, 2 hand-over under way, 3 handed over
    dismissed: bool = False
    onjob_transfers: list[float] = field(default_factory=list)
    version: int = 0


@dataclass
class GroupChatSim:
    core: WeComSimulator
    groups: dict[str, dict[str, SimGroup]] = field(default_factory=lambda: defaultdict(dict))
    templates: dict[str, dict[str, dict[str, Any]]] = field(
        default_factory=lambda: defaultdict(dict)
    )
    # (corp, owner, day_begin_time) → groupchat/statistic `data`
    stats: dict[tuple[str, str, int], dict[str, int]] = field(default_factory=dict)
    # (corp, new owner, day number) → groups handed to them that day
    handed: dict[tuple[str, str, int], int] = field(default_factory=lambda: defaultdict(int))
    limit_errcode: int = 90503
    cursors: dict[str, int] = field(default_factory=dict)

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post(P + "groupchat/list", self._list)
        router.add_post(P + "groupchat/get", self._get)
        router.add_post(P + "groupchat/statistic", self._statistic)
        router.add_post(P + "groupchat/statistic_group_by_day", self._statistic_by_day)
        router.add_post(P + "groupchat/transfer", self._resigned_transfer)
        router.add_post(P + "groupchat/onjob_transfer", self._onjob_transfer)
        router.add_post(P + "group_welcome_template/add", self._template_add)
        router.add_post(P + "group_welcome_template/edit", self._template_edit)
        router.add_post(P + "group_welcome_template/get", self._template_get)
        router.add_post(P + "group_welcome_template/del", self._template_del)

    # ---- scenario set-up (what happens in the WeCom client)

    def create_group(
        self,
        corp_id: str,
        owner: str,
        name: str = "",
        *,
        members: list[str] | None = None,
        chat_id: str | None = None,
        notice: str = "",
    ) -> SimGroup:
        """A salesperson creates a customer group with some members (owner included)."""
        now = int(self.core.clock())
        group = SimGroup(
            chat_id=chat_id or "wr" + secrets.token_urlsafe(20),
            owner=owner,
            name=name,
            notice=notice,
            create_time=now,
        )
        self.core.add_member(corp_id, owner)
        self.groups[corp_id][group.chat_id] = group
        self.join(corp_id, group.chat_id, [owner, *(members or [])], inviter="")
        return group

    def join(
        self, corp_id: str, chat_id: str, userids: list[str], *, inviter: str = "", scene: int = 1
    ) -> None:
        group = self.groups[corp_id][chat_id]
        for userid in userids:
            external = userid.startswith(("wm", "wo"))
            group.members[userid] = SimGroupMember(
                userid=userid,
                type=2 if external else 1,
                join_time=int(self.core.clock()),
                join_scene=scene,
                invitor=inviter if scene != 3 else "",
                name=self._name_of(corp_id, userid),
                unionid=self._unionid_of(corp_id, userid),
            )
        group.version += 1

    def leave(self, corp_id: str, chat_id: str, userids: list[str]) -> None:
        group = self.groups[corp_id][chat_id]
        for userid in userids:
            group.members.pop(userid, None)
        group.version += 1

    def set_statistic(self, corp_id: str, owner: str, day_begin: int, **data: int) -> None:
        self.stats[(corp_id, owner, day_begin)] = dict(data)

    def _name_of(self, corp_id: str, userid: str) -> str:
        contact = self.core.contacts.contacts[corp_id].get(userid)
        return contact.name if contact is not None else userid

    def _unionid_of(self, corp_id: str, userid: str) -> str:
        contact = self.core.contacts.contacts[corp_id].get(userid)
        return contact.unionid if contact is not None else ""

    def _resigned(self, corp_id: str, userid: str) -> bool:
        return (corp_id, userid) in self.core.contacts.resigned

    # ---- endpoints

    @api_call
    async def _list(self, app: SimApp, body: dict[str, Any]) -> web.Response:
        limit = int(body.get("limit") or 0)
        if not 1 <= limit <= 1000:
            return self.core.error(40058, "limit must be 1 ~ 1000")
        owners = list((body.get("owner_filter") or {}).get("userid_list") or [])
        if len(owners) > 100:
            return self.core.error(40058, "owner_filter.userid_list holds at most 100")
        status_filter = int(body.get("status_filter") or 0)
        rows = [
            g
            for g in self.groups[app.corp_id].values()
            if not g.dismissed
            and (not owners or g.owner in owners)
            and (status_filter == 0 or g.status != 0)
        ]
        cursor = str(body.get("cursor") or "")
        start = 0
        if cursor:
            if cursor not in self.cursors:
                return self.core.error(40058, "invalid cursor")
            start = self.cursors[cursor]
        page = rows[start : start + limit]
        nxt = ""
        if start + limit < len(rows):
            nxt = secrets.token_urlsafe(12)
            self.cursors[nxt] = start + limit
        return ok(
            group_chat_list=[
                {"chat_id": g.chat_id, "status": self._status(app.corp_id, g)} for g in page
            ],
            next_cursor=nxt,
        )

    def _status(self, corp_id: str, group: SimGroup) -> int:
        if group.status == 0 and self._resigned(corp_id, group.owner):
            return 1
        return group.status

    @api_call
    async def _get(self, app: SimApp, body: dict[str, Any]) -> web.Response:
        group = self.groups[app.corp_id].get(str(body.get("chat_id") or ""))
        if group is None or group.dismissed:
            return self.core.error(86001, "invalid chatid")
        need_name = bool(body.get("need_name"))
        members = []
        for m in group.members.values():
            row: dict[str, Any] = {
                "userid": m.userid,
                "type": m.type,
                "join_time": m.join_time,
                "join_scene": m.join_scene,
                "group_nickname": m.group_nickname,
            }
            if m.invitor:
                row["invitor"] = {"userid": m.invitor}
            if m.type == 2 and m.unionid:
                row["unionid"] = m.unionid
            if need_name:
                row["name"] = m.name
            members.append(row)
        return ok(
            group_chat={
                "chat_id": group.chat_id,
                "name": group.name,
                "owner": group.owner,
                "create_time": group.create_time,
                "notice": group.notice,
                "member_list": members,
                "admin_list": [{"userid": a} for a in group.admins],
                "member_version": f"v{group.version}",
            }
        )

    def _check_days(self, begin: int, end: int) -> str | None:
        now = self.core.clock()
        if begin <= 0 or begin < now - STAT_HORIZON_DAYS * DAY:
            return "day_begin_time must lie within the last 180 days"
        if end < begin or end - begin > BY_DAY_MAX_DAYS * DAY:
            return "day_end_time must be 0 ~ 30 days after day_begin_time"
        return None

    def _owners(self, body: dict[str, Any]) -> list[str] | str:
        owners = list((body.get("owner_filter") or {}).get("userid_list") or [])
        if not owners:
            return "owner_filter.userid_list is required"
        if len(owners) > 100:
            return "owner_filter.userid_list holds at most 100"
        return owners

    def _day_data(self, corp_id: str, owners: list[str], day: int) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for owner in owners:
            for key, value in self.stats.get((corp_id, owner, day), {}).items():
                out[key] += value
        return {
            k: out.get(k, 0)
            for k in (
                "new_chat_cnt",
                "chat_total",
                "chat_has_msg",
                "new_member_cnt",
                "member_total",
                "member_has_msg",
                "msg_total",
            )
        }

    @api_call
    async def _statistic(self, app: SimApp, body: dict[str, Any]) -> web.Response:
        begin = int(body.get("day_begin_time") or 0)
        end = int(body.get("day_end_time") or begin)
        problem = self._check_days(begin, end)
        if problem:
            return self.core.error(40058, problem)
        owners = self._owners(body)
        if isinstance(owners, str):
            return self.core.error(40058, owners)
        limit = int(body.get("limit") or 500)
        if not 1 <= limit <= 1000:
            return self.core.error(40058, "limit must be 1 ~ 1000")
        offset = int(body.get("offset") or 0)
        items = []
        for owner in owners:
            if not any(g.owner == owner for g in self.groups[app.corp_id].values()):
                continue
            data: dict[str, int] = defaultdict(int)
            for day in range(begin, end + 1, DAY):
                for key, value in self._day_data(app.corp_id, [owner], day).items():
                    data[key] += value
            items.append({"owner": owner, "data": dict(data)})
        page = items[offset : offset + limit]
        return ok(total=len(items), next_offset=min(offset + limit, len(items)), items=page)

    @api_call
    async def _statistic_by_day(self, app: SimApp, body: dict[str, Any]) -> web.Response:
        begin = int(body.get("day_begin_time") or 0)
        end = int(body.get("day_end_time") or begin)
        problem = self._check_days(begin, end)
        if problem:
            return self.core.error(40058, problem)
        owners = self._owners(body)
        if isinstance(owners, str):
            return self.core.error(40058, owners)
        items = [
            {"stat_time": day, "data": self._day_data(app.corp_id, owners, day)}
            for day in range(begin, end + 1, DAY)
        ]
        return ok(items=items)

    async def _resigned_transfer(self, request: web.Request) -> web.Response:
        return await self._transfer(request, resigned=True)

    async def _onjob_transfer(self, request: web.Request) -> web.Response:
        return await self._transfer(request, resigned=False)

    async def _transfer(self, request: web.Request, *, resigned: bool) -> web.Response:
        app = self.core.authorise(request)
        if isinstance(app, web.Response):
            return app
        body = await json_body(request) or {}
        chat_ids = [str(c) for c in body.get("chat_id_list") or []]
        new_owner = str(body.get("new_owner") or "")
        if not 1 <= len(chat_ids) <= 100:
            return self.core.error(40058, "chat_id_list must hold 1 ~ 100 chat ids")
        if new_owner not in self.core.members[app.corp_id] or self._resigned(
            app.corp_id, new_owner
        ):
            return self.core.error(60111, "invalid new_owner userid")
        now = self.core.clock()
        today = int(now // DAY)
        failed = []
        for chat_id in chat_ids:
            code = self._transfer_one(app, chat_id, new_owner, resigned, now, today)
            if code:
                failed.append({"chat_id": chat_id, "errcode": code, "errmsg": f"errcode {code}"})
        return ok(failed_chat_list=failed)

    def _transfer_one(
        self, app: SimApp, chat_id: str, new_owner: str, resigned: bool, now: float, today: int
    ) -> int:
        group = self.groups[app.corp_id].get(chat_id)
        if group is None or group.dismissed:
            return 90501  # "chat is not external group chat"
        owner_gone = self._resigned(app.corp_id, group.owner)
        if resigned and not owner_gone:
            return 90500  # "the owner of this chat is not resigned"
        if not resigned and owner_gone:
            return 90502
        if group.owner == new_owner:
            return 90504
        if resigned and group.status == 2:
            return 90507
        if self.handed[(app.corp_id, new_owner, today)] >= TRANSFERS_PER_OWNER_PER_DAY:
            return self.limit_errcode
        if not resigned:
            recent = [t for t in group.onjob_transfers if t > now - 90 * DAY]
            if len(recent) >= ONJOB_TRANSFERS_PER_90_DAYS:
                return self.limit_errcode
            group.onjob_transfers = [*recent, now]
        self.handed[(app.corp_id, new_owner, today)] += 1
        group.owner = new_owner
        group.status = 3 if resigned else 0
        if new_owner not in group.members:
            self.join(app.corp_id, chat_id, [new_owner], inviter="")
        return 0

    # ---- group welcome templates

    def _template(self, body: dict[str, Any]) -> dict[str, Any] | str:
        text = str((body.get("text") or {}).get("content") or "")
        if len(text.encode()) > TEMPLATE_TEXT_LIMIT:
            return "text.content over 4000 bytes"
        attachments = {
            k: body[k] for k in ("image", "link", "miniprogram", "file", "video") if body.get(k)
        }
        if len(attachments) > 1:
            return "one attachment at most"
        if not text and not attachments:
            return "text or an attachment is required"
        return {"text": {"content": text}, **attachments}

    async def _template_add(self, request: web.Request) -> web.Response:
        app = self.core.authorise(request)
        if isinstance(app, web.Response):
            return app
        template = self._template(await json_body(request) or {})
        if isinstance(template, str):
            return self.core.error(40058, template)
        template_id = "msg" + secrets.token_urlsafe(16)
        self.templates[app.corp_id][template_id] = template
        return ok(template_id=template_id)

    @api_call
    async def _template_edit(self, app: SimApp, body: dict[str, Any]) -> web.Response:
        template_id = str(body.get("template_id") or "")
        if template_id not in self.templates[app.corp_id]:
            return self.core.error(40058, "invalid template_id")
        template = self._template(body)
        if isinstance(template, str):
            return self.core.error(40058, template)
        self.templates[app.corp_id][template_id] = template
        return ok()

    @api_call
    async def _template_get(self, app: SimApp, body: dict[str, Any]) -> web.Response:
        template = self.templates[app.corp_id].get(str(body.get("template_id") or ""))
        if template is None:
            return self.core.error(40058, "invalid template_id")
        return ok(**template)

    @api_call
    async def _template_del(self, app: SimApp, body: dict[str, Any]) -> web.Response:
        if self.templates[app.corp_id].pop(str(body.get("template_id") or ""), None) is None:
            return self.core.error(40058, "invalid template_id")
        return ok()


def chat_event_xml(
    corp_id: str,
    chat_id: str,
    change_type: str,
    update_detail: str = "",
    *,
    members: list[str] | None = None,
    join_scene: int | None = None,
    quit_scene: int | None = None,
    create_time: int | None = None,
) -> bytes:
    """change_external_chat (doc 92130) as WeCom pushes it."""
    fields: dict[str, str | int] = {"ChatId": chat_id, "ChangeType": change_type}
    if update_detail:
        fields["UpdateDetail"] = update_detail
    if join_scene is not None:
        fields["JoinScene"] = join_scene
    if quit_scene is not None:
        fields["QuitScene"] = quit_scene
    if members is not None:
        fields["MemChangeCnt"] = len(members)
        fields["MemChangeList"] = "".join(f"<Item>{m}</Item>" for m in members)
    return event_xml(corp_id, "change_external_chat", fields, create_time=create_time)


async def group_scenario(
    http: aiohttp.ClientSession,
    sim: WeComSimulator,
    app: SimApp,
    callback_url: str,
    owner: str,
    customers: list[str],
    *,
    name: str = "客户群",
    leaver: str | None = None,
) -> SimGroup:
    """A salesperson creates a group, customers scan its QR code to join, one leaves, the
    group is renamed: each step pushed to crmbot as change_external_chat."""
    group = sim.groups.create_group(app.corp_id, owner, name)
    await push(http, callback_url, app, chat_event_xml(app.corp_id, group.chat_id, "create"))
    sim.groups.join(app.corp_id, group.chat_id, customers, scene=3)
    await push(
        http,
        callback_url,
        app,
        chat_event_xml(
            app.corp_id, group.chat_id, "update", "add_member", members=customers, join_scene=3
        ),
    )
    if leaver is not None:
        sim.groups.leave(app.corp_id, group.chat_id, [leaver])
        await push(
            http,
            callback_url,
            app,
            chat_event_xml(
                app.corp_id, group.chat_id, "update", "del_member", members=[leaver], quit_scene=0
            ),
        )
    group.name = name + "（VIP）"
    await push(
        http,
        callback_url,
        app,
        chat_event_xml(app.corp_id, group.chat_id, "update", "change_name"),
    )
    return group
