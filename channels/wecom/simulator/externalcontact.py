"""客户联系 (external contacts) endpoints: contacts and follow relations, welcome codes,
corp tags, group-send tasks (企业群发) and customer hand-over (在职/离职继承).

Shapes follow the docs (92113 list, 92994 batch/get_by_user, 92114 get, 92137
send_welcome_msg, 92117 corp tags, 92135 add_msg_template, 93338 groupmsg v2,
92125/94081 transfers). Limits kept: batch ≤100 members and ≤100 per page, welcome code
valid 20 s and usable once (41051 afterwards), 3,000 corp tags, group-send reminders
≤3 per 24 h, a per-customer monthly group-send cap, ≤100 customers per transfer and
2 transfers per customer per 90 days.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .core import SimApp, api_call, json_body, ok

if TYPE_CHECKING:
    from .core import WeComSimulator

WELCOME_VALIDITY = 20.0
MAX_CORP_TAGS = 3000
TRANSFERS_PER_90_DAYS = 2


@dataclass
class Follow:
    userid: str
    createtime: int
    remark: str = ""
    state: str = ""
    tags: list[str] = field(default_factory=list)
    add_way: int = 1


@dataclass
class SimContact:
    external_userid: str
    name: str
    unionid: str = ""
    follow: dict[str, Follow] = field(default_factory=dict)


@dataclass
class WelcomeCode:
    corp_id: str
    userid: str
    external_userid: str
    issued_at: float
    used: bool = False


@dataclass
class GroupSendTask:
    corp_id: str
    msgid: str
    sender: str
    text: str
    external_userids: list[str]
    create_time: int
    attachments: list[dict[str, Any]] = field(default_factory=list)
    confirmed: dict[str, int] = field(default_factory=dict)  # userid → send_time
    results: dict[tuple[str, str], int] = field(default_factory=dict)  # (userid, ext) → status
    reminds: list[float] = field(default_factory=list)
    cancelled: bool = False
    chat_type: str = "single"  # "group": external_userids hold the groups' chat ids


@dataclass
class Transfer:
    corp_id: str
    handover: str
    takeover: str
    external_userid: str
    resigned: bool
    status: int = 2  # 1 done, 2 waiting, 3 refused, 4 takeover at customer limit
    takeover_time: int = 0


@dataclass
class ContactSim:
    core: WeComSimulator
    contacts: dict[str, dict[str, SimContact]] = field(default_factory=lambda: defaultdict(dict))
    tag_groups: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    welcome_codes: dict[str, WelcomeCode] = field(default_factory=dict)
    welcomes: list[dict[str, Any]] = field(default_factory=list)
    group_sends: dict[str, GroupSendTask] = field(default_factory=dict)
    monthly_cap: int = 4  # docs disagree (4 vs days in month): configurable (issue 11)
    received: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    transfers: list[Transfer] = field(default_factory=list)
    resigned: set[tuple[str, str]] = field(default_factory=set)

    def add_routes(self, router: web.UrlDispatcher) -> None:
        p = "/cgi-bin/externalcontact/"
        router.add_get(p + "get_follow_user_list", self._follow_users)
        router.add_get(p + "list", self._list)
        router.add_get(p + "get", self._get)
        router.add_post(p + "batch/get_by_user", self._batch_get_by_user)
        router.add_post(p + "send_welcome_msg", self._send_welcome)
        router.add_post(p + "get_corp_tag_list", self._tag_list)
        router.add_post(p + "add_corp_tag", self._add_tag)
        router.add_post(p + "edit_corp_tag", self._edit_tag)
        router.add_post(p + "del_corp_tag", self._del_tag)
        router.add_post(p + "mark_tag", self._mark_tag)
        router.add_post(p + "add_msg_template", self._add_msg_template)
        router.add_post(p + "get_groupmsg_list_v2", self._groupmsg_list)
        router.add_post(p + "get_groupmsg_task", self._groupmsg_task)
        router.add_post(p + "get_groupmsg_send_result", self._groupmsg_result)
        router.add_post(p + "remind_groupmsg_send", self._remind)
        router.add_post(p + "cancel_groupmsg_send", self._cancel)
        router.add_post(p + "transfer_customer", self._transfer)
        router.add_post(p + "transfer_result", self._transfer_result)
        router.add_post(p + "resigned/transfer_customer", self._resigned_transfer)
        router.add_post(p + "resigned/transfer_result", self._resigned_result)

    # ---- scenario set-up (what happens in the WeCom client)

    def add_customer(
        self,
        corp_id: str,
        userid: str,
        name: str,
        *,
        external_userid: str | None = None,
        unionid: str = "",
        state: str = "",
        with_welcome_code: bool = True,
    ) -> tuple[str, str | None]:
        """A customer adds a salesperson: (external_userid, welcome_code or None)."""
        ext = external_userid or "wm" + secrets.token_hex(14)
        contact = self.contacts[corp_id].setdefault(ext, SimContact(ext, name, unionid))
        contact.follow[userid] = Follow(userid, int(self.core.clock()), state=state)
        self.core.add_member(corp_id, userid)
        code = None
        if with_welcome_code:
            code = "welcome" + secrets.token_urlsafe(16)
            self.welcome_codes[code] = WelcomeCode(corp_id, userid, ext, self.core.clock())
        return ext, code

    def customer_deletes(self, corp_id: str, userid: str, external_userid: str) -> None:
        self.contacts[corp_id][external_userid].follow.pop(userid, None)

    def confirm_group_send(self, msgid: str, userid: str, chosen: list[str] | None = None) -> None:
        """The salesperson taps 'send' in the WeCom client (for a group task, to the
        `chosen` groups only when given: the others stay 'not sent')."""
        task = self.group_sends[msgid]
        if task.cancelled or userid in task.confirmed:
            return
        task.confirmed[userid] = int(self.core.clock())
        if task.chat_type == "group":
            self._confirm_groups(task, userid, task.external_userids if chosen is None else chosen)
            return
        for ext in task.external_userids:
            contact = self.contacts[task.corp_id].get(ext)
            if contact is None or userid not in contact.follow:
                task.results[(userid, ext)] = 2  # not a contact (any more)
            elif self.received[(task.corp_id, ext)] >= self.monthly_cap:
                task.results[(userid, ext)] = 3  # already received the month's group sends
            else:
                self.received[(task.corp_id, ext)] += 1
                task.results[(userid, ext)] = 1

    def _confirm_groups(self, task: GroupSendTask, userid: str, chosen: list[str]) -> None:
        groups = self.core.groups.groups[task.corp_id]
        for chat_id in task.external_userids:
            group = groups.get(chat_id)
            if chat_id not in chosen:
                continue  # left at 0: the owner did not send to this group
            if group is None or group.dismissed or group.owner != userid:
                task.results[(userid, chat_id)] = 2  # no longer the sender's group
            elif self.received[(task.corp_id, chat_id)] >= self.monthly_cap:
                task.results[(userid, chat_id)] = 3  # the group's monthly receipts used up
            else:
                self.received[(task.corp_id, chat_id)] += 1
                task.results[(userid, chat_id)] = 1

    def complete_transfers(self, status: int = 1) -> None:
        """WeCom finishes pending hand-overs (24 h later in reality)."""
        for t in self.transfers:
            if t.status == 2:
                t.status = status
                t.takeover_time = int(self.core.clock())
                if status == 1:
                    contact = self.contacts[t.corp_id].get(t.external_userid)
                    if contact is not None:
                        old = contact.follow.pop(t.handover, None)
                        contact.follow[t.takeover] = Follow(
                            t.takeover, int(self.core.clock()), tags=old.tags if old else []
                        )

    # ---- helpers

    def _auth(self, request: web.Request) -> SimApp | web.Response:
        return self.core.authorise(request)

    def _contact_json(self, c: SimContact) -> dict[str, Any]:
        return {
            "external_userid": c.external_userid,
            "name": c.name,
            "type": 1,
            "gender": 0,
            **({"unionid": c.unionid} if c.unionid else {}),
        }

    def _follow_json(self, corp: str, f: Follow) -> dict[str, Any]:
        tags = [self._tag(corp, t) for t in f.tags]
        return {
            "userid": f.userid,
            "remark": f.remark,
            "createtime": f.createtime,
            "tags": [
                {"group_name": g["group_name"], "tag_name": t["name"], "tag_id": t["id"], "type": 1}
                for g, t in (x for x in tags if x)
            ],
            "tag_id": list(f.tags),
            "state": f.state,
            "add_way": f.add_way,
        }

    def _tag(self, corp: str, tag_id: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        for group in self.tag_groups[corp]:
            for tag in group["tag"]:
                if tag["id"] == tag_id:
                    return group, tag
        return None

    # ---- contacts

    async def _follow_users(self, request: web.Request) -> web.Response:
        app = self._auth(request)
        if isinstance(app, web.Response):
            return app
        users = sorted({u for c in self.contacts[app.corp_id].values() for u in c.follow})
        return ok(follow_user=users)

    async def _list(self, request: web.Request) -> web.Response:
        app = self._auth(request)
        if isinstance(app, web.Response):
            return app
        userid = request.query.get("userid", "")
        if userid not in self.core.members[app.corp_id]:
            return self.core.error(60111, "invalid userid")
        ids = [e for e, c in sorted(self.contacts[app.corp_id].items()) if userid in c.follow]
        return ok(external_userid=ids)

    async def _get(self, request: web.Request) -> web.Response:
        app = self._auth(request)
        if isinstance(app, web.Response):
            return app
        c = self.contacts[app.corp_id].get(request.query.get("external_userid", ""))
        if c is None:
            return self.core.error(40096, "invalid external userid")
        return ok(
            external_contact=self._contact_json(c),
            follow_user=[self._follow_json(app.corp_id, f) for f in c.follow.values()],
        )

    @api_call
    async def _batch_get_by_user(self, app: SimApp, body: dict[str, Any]) -> web.Response:
        users = list(body.get("userid_list") or [])
        limit = int(body.get("limit") or 50)
        if not users or len(users) > 100 or limit > 100:
            return self.core.error(40058, "userid_list must hold 1..100 ids and limit ≤ 100")
        rows = [
            (c, c.follow[u])
            for u in users
            for _e, c in sorted(self.contacts[app.corp_id].items())
            if u in c.follow
        ]
        start = int(body.get("cursor") or 0)
        page = rows[start : start + limit]
        nxt = start + limit if start + limit < len(rows) else None
        return ok(
            external_contact_list=[
                {
                    "external_contact": self._contact_json(c),
                    "follow_info": {
                        k: v for k, v in self._follow_json(app.corp_id, f).items() if k != "tags"
                    },
                }
                for c, f in page
            ],
            next_cursor="" if nxt is None else str(nxt),
        )

    @api_call
    async def _send_welcome(self, app: SimApp, body: dict[str, Any]) -> web.Response:
        code = self.welcome_codes.get(str(body.get("welcome_code", "")))
        if code is None or code.corp_id != app.corp_id:
            return self.core.error(40058, "invalid welcome_code")
        if code.used or self.core.clock() - code.issued_at > WELCOME_VALIDITY:
            return self.core.error(41051, "externaluser has started chatting")
        text = str((body.get("text") or {}).get("content", ""))
        attachments = list(body.get("attachments") or [])
        if len(text.encode()) > 4000 or len(attachments) > 9:
            return self.core.error(40058, "text over 4000 bytes or more than 9 attachments")
        code.used = True
        self.welcomes.append(
            {
                "userid": code.userid,
                "external_userid": code.external_userid,
                "text": text,
                "attachments": attachments,
            }
        )
        return ok()

    # ---- corp tags

    @api_call
    async def _tag_list(self, app: SimApp, body: dict[str, Any]) -> web.Response:
        tag_ids = set(body.get("tag_id") or [])
        group_ids = set(body.get("group_id") or [])
        out = []
        for g in self.tag_groups[app.corp_id]:
            if group_ids and g["group_id"] not in group_ids:
                continue
            tags = [t for t in g["tag"] if not tag_ids or t["id"] in tag_ids]
            if tags or not tag_ids:
                out.append({**g, "tag": tags})
        return ok(tag_group=out)

    @api_call
    async def _add_tag(self, app: SimApp, body: dict[str, Any]) -> web.Response:
        names = [str(t.get("name", "")) for t in body.get("tag") or []]
        if not names or any(not n or len(n) > 30 for n in names):
            return self.core.error(40058, "tag name must be 1..30 characters")
        total = sum(len(g["tag"]) for g in self.tag_groups[app.corp_id])
        if total + len(names) > MAX_CORP_TAGS:
            return self.core.error(40071, "corp tag count out of limit")
        group = next(
            (
                g
                for g in self.tag_groups[app.corp_id]
                if g["group_id"] == body.get("group_id")
                or g["group_name"] == body.get("group_name")
            ),
            None,
        )
        if group is None:
            if not body.get("group_name"):
                return self.core.error(40068, "invalid tag group id")
            group = {
                "group_id": self.core.next_id("etgroup"),
                "group_name": body["group_name"],
                "create_time": int(self.core.clock()),
                "order": int(body.get("order", 0)),
                "deleted": False,
                "tag": [],
            }
            self.tag_groups[app.corp_id].append(group)
        existing = {t["name"] for t in group["tag"]}
        if existing & set(names):
            return self.core.error(40071, "tag name exists")
        added = [
            {
                "id": self.core.next_id("ettag"),
                "name": n,
                "create_time": int(self.core.clock()),
                "order": 0,
                "deleted": False,
            }
            for n in names
        ]
        group["tag"].extend(added)
        return ok(tag_group={**group, "tag": added})

    @api_call
    async def _edit_tag(self, app: SimApp, body: dict[str, Any]) -> web.Response:
        target = str(body.get("id", ""))
        for g in self.tag_groups[app.corp_id]:
            if g["group_id"] == target:
                g["group_name"] = body.get("name", g["group_name"])
                return ok()
            for t in g["tag"]:
                if t["id"] == target:
                    t["name"] = body.get("name", t["name"])
                    t["order"] = int(body.get("order", t["order"]))
                    return ok()
        return self.core.error(40068, "invalid tag id")

    @api_call
    async def _del_tag(self, app: SimApp, body: dict[str, Any]) -> web.Response:
        tag_ids = set(body.get("tag_id") or [])
        group_ids = set(body.get("group_id") or [])
        groups = self.tag_groups[app.corp_id]
        groups[:] = [g for g in groups if g["group_id"] not in group_ids]
        for g in groups:
            g["tag"] = [t for t in g["tag"] if t["id"] not in tag_ids]
        return ok()

    @api_call
    async def _mark_tag(self, app: SimApp, body: dict[str, Any]) -> web.Response:
        c = self.contacts[app.corp_id].get(str(body.get("external_userid", "")))
        if c is None or body.get("userid") not in c.follow:
            return self.core.error(84061, "not external contact")
        add, remove = list(body.get("add_tag") or []), list(body.get("remove_tag") or [])
        if any(self._tag(app.corp_id, t) is None for t in add + remove):
            return self.core.error(40068, "invalid tag id")
        follow = c.follow[body["userid"]]
        follow.tags = [t for t in follow.tags if t not in remove] + [
            t for t in add if t not in follow.tags
        ]
        return ok()

    # ---- group sends (企业群发)

    @api_call
    async def _add_msg_template(self, app: SimApp, body: dict[str, Any]) -> web.Response:
        chat_type = str(body.get("chat_type", "single"))
        if chat_type not in ("single", "group"):
            return self.core.error(40058, "chat_type is single or group")
        if chat_type == "group":
            return self._add_group_template(app, body)
        if body.get("chat_id_list"):
            return self.core.error(40058, "chat_id_list is only valid for chat_type group")
        sender = str(body.get("sender", ""))
        wanted = list(body.get("external_userid") or [])
        if len(wanted) > 10000:
            return self.core.error(40058, "external_userid over 10000")
        refused = self._refused_content(body)
        if refused is not None:
            return refused
        contacts = self.contacts[app.corp_id]
        reachable = [
            e for e in wanted if e in contacts and (not sender or sender in contacts[e].follow)
        ]
        fail_list = [e for e in wanted if e not in reachable]
        if not reachable:
            return self.core.error(41048, "no customer to send to")
        return ok(fail_list=fail_list, msgid=self._new_task(app, sender, body, reachable, "single"))

    def _refused_content(self, body: dict[str, Any]) -> web.Response | None:
        text = str((body.get("text") or {}).get("content", ""))
        if len(text.encode()) > 4000 or len(body.get("attachments") or []) > 9:
            return self.core.error(40058, "text over 4000 bytes or more than 9 attachments")
        return None

    def _new_task(
        self, app: SimApp, sender: str, body: dict[str, Any], targets: list[str], chat_type: str
    ) -> str:
        msgid = self.core.next_id("msgGS")
        self.group_sends[msgid] = GroupSendTask(
            app.corp_id,
            msgid,
            sender,
            str((body.get("text") or {}).get("content", "")),
            targets,
            int(self.core.clock()),
            attachments=list(body.get("attachments") or []),
            chat_type=chat_type,
        )
        return msgid

    def _add_group_template(self, app: SimApp, body: dict[str, Any]) -> web.Response:
        """客户群群发 (doc 92135): the sender is required; chat_id_list (≤2000) names some
        of the sender's groups, without it the task offers all of them."""
        sender = str(body.get("sender", ""))
        if not sender:
            return self.core.error(40058, "sender is required for chat_type group")
        refused = self._refused_content(body)
        if refused is not None:
            return refused
        owned = [
            g.chat_id
            for g in self.core.groups.groups[app.corp_id].values()
            if g.owner == sender and not g.dismissed
        ]
        wanted = [str(c) for c in body.get("chat_id_list") or []]
        if len(wanted) > 2000:
            return self.core.error(40058, "chat_id_list holds at most 2000 groups")
        foreign = [c for c in wanted if c not in owned]
        if foreign:
            return self.core.error(40058, f"groups not owned by the sender: {foreign[:3]}")
        targets = wanted or owned
        if not targets:
            return self.core.error(41048, "the sender has no group to send to")
        return ok(fail_list=[], msgid=self._new_task(app, sender, body, targets, "group"))

    def _senders(self, task: GroupSendTask) -> list[str]:
        if task.sender:
            return [task.sender]
        contacts = self.contacts[task.corp_id]
        return sorted(
            {u for e in task.external_userids if e in contacts for u in contacts[e].follow}
        )

    @api_call
    async def _groupmsg_list(self, app: SimApp, body: dict[str, Any]) -> web.Response:
        start, end = int(body.get("start_time", 0)), int(body.get("end_time", 0))
        if end - start > 31 * 86400 or end < start:
            return self.core.error(40058, "time span over one month")
        items = [
            t
            for t in self.group_sends.values()
            if t.corp_id == app.corp_id
            and start <= t.create_time <= end
            and t.chat_type == str(body.get("chat_type", "single"))
            and (not body.get("creator") or t.sender == body["creator"])
        ]
        return ok(
            next_cursor="",
            group_msg_list=[
                {
                    "msgid": t.msgid,
                    "creator": t.sender,
                    "create_time": str(t.create_time),
                    "create_type": 0,
                    "text": {"content": t.text},
                    "attachments": t.attachments,
                }
                for t in items
            ],
        )

    def _task_for(self, app: SimApp, body: dict[str, Any]) -> GroupSendTask | None:
        task = self.group_sends.get(str(body.get("msgid", "")))
        return task if task is not None and task.corp_id == app.corp_id else None

    @api_call
    async def _groupmsg_task(self, app: SimApp, body: dict[str, Any]) -> web.Response:
        task = self._task_for(app, body)
        if task is None:
            return self.core.error(40058, "invalid msgid")
        rows = [
            {
                "userid": u,
                "status": 2 if u in task.confirmed else 0,
                **({"send_time": task.confirmed[u]} if u in task.confirmed else {}),
            }
            for u in self._senders(task)
        ]
        return self._paged(rows, body, "task_list")

    @api_call
    async def _groupmsg_result(self, app: SimApp, body: dict[str, Any]) -> web.Response:
        task = self._task_for(app, body)
        if task is None:
            return self.core.error(40058, "invalid msgid")
        userid = str(body.get("userid", ""))
        if task.chat_type == "group":
            rows = [
                {
                    "chat_id": c,
                    "userid": userid,
                    "status": task.results.get((userid, c), 0),
                    **(
                        {"send_time": task.confirmed[userid]} if (userid, c) in task.results else {}
                    ),
                }
                for c in task.external_userids
            ]
            return self._paged(rows, body, "send_list")
        rows = [
            {
                "external_userid": e,
                "userid": userid,
                "status": task.results.get((userid, e), 0),
                **({"send_time": task.confirmed[userid]} if (userid, e) in task.results else {}),
            }
            for e in task.external_userids
            if e in self.contacts[task.corp_id] or (userid, e) in task.results
        ]
        return self._paged(rows, body, "send_list")

    def _paged(self, rows: list[dict[str, Any]], body: dict[str, Any], name: str) -> web.Response:
        limit = min(int(body.get("limit") or 500), 1000)
        start = int(body.get("cursor") or 0)
        nxt = start + limit if start + limit < len(rows) else None
        return ok(
            **{name: rows[start : start + limit]}, next_cursor="" if nxt is None else str(nxt)
        )

    async def _remind(self, request: web.Request) -> web.Response:
        app = self._auth(request)
        if isinstance(app, web.Response):
            return app
        task = self._task_for(app, await json_body(request) or {})
        if task is None:
            return self.core.error(40058, "invalid msgid")
        now = self.core.clock()
        recent = [t for t in task.reminds if t > now - 86400]
        if len(recent) >= 3:
            return self.core.error(45009, "remind limit: 3 per 24 hours")
        task.reminds.append(now)
        return ok()

    async def _cancel(self, request: web.Request) -> web.Response:
        app = self._auth(request)
        if isinstance(app, web.Response):
            return app
        task = self._task_for(app, await json_body(request) or {})
        if task is None:
            return self.core.error(40058, "invalid msgid")
        task.cancelled = True
        return ok()

    # ---- hand-over (在职继承 / 离职继承)

    async def _transfer(self, request: web.Request) -> web.Response:
        return await self._do_transfer(request, resigned=False)

    async def _resigned_transfer(self, request: web.Request) -> web.Response:
        return await self._do_transfer(request, resigned=True)

    async def _do_transfer(self, request: web.Request, *, resigned: bool) -> web.Response:
        app = self._auth(request)
        if isinstance(app, web.Response):
            return app
        body = await json_body(request) or {}
        handover, takeover = (
            str(body.get("handover_userid", "")),
            str(body.get("takeover_userid", "")),
        )
        ids = list(body.get("external_userid") or [])
        if not ids or len(ids) > 100:
            return self.core.error(40058, "external_userid must hold 1..100 ids")
        if resigned and (app.corp_id, handover) not in self.resigned:
            return self.core.error(40097, "handover user is not resigned")
        if takeover not in self.core.members[app.corp_id]:
            return self.core.error(60111, "invalid takeover userid")
        out = []
        for ext in ids:
            contact = self.contacts[app.corp_id].get(ext)
            if contact is None or handover not in contact.follow:
                out.append({"external_userid": ext, "errcode": 84061})
                continue
            past = sum(
                1 for t in self.transfers if t.corp_id == app.corp_id and t.external_userid == ext
            )
            if past >= TRANSFERS_PER_90_DAYS:
                out.append({"external_userid": ext, "errcode": 40128})
                continue
            self.transfers.append(Transfer(app.corp_id, handover, takeover, ext, resigned))
            out.append({"external_userid": ext, "errcode": 0})
        return ok(customer=out)

    async def _transfer_result(self, request: web.Request) -> web.Response:
        return await self._result(request, resigned=False)

    async def _resigned_result(self, request: web.Request) -> web.Response:
        return await self._result(request, resigned=True)

    async def _result(self, request: web.Request, *, resigned: bool) -> web.Response:
        app = self._auth(request)
        if isinstance(app, web.Response):
            return app
        body = await json_body(request) or {}
        rows = [
            {
                "external_userid": t.external_userid,
                "status": t.status,
                "takeover_time": t.takeover_time,
            }
            for t in self.transfers
            if t.corp_id == app.corp_id
            and t.resigned == resigned
            and t.handover == body.get("handover_userid")
            and t.takeover == body.get("takeover_userid")
        ]
        limit = 1000
        start = int(body.get("cursor") or 0)
        nxt = start + limit if start + limit < len(rows) else None
        return ok(customer=rows[start : start + limit], next_cursor="" if nxt is None else str(nxt))
