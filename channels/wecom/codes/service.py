"""Creating, editing and deleting channel QR codes (doc 92228: add/update/del_contact_way).

Console actions call WeCom directly, as the hand-over does (channels/wecom/transfer.py):
the marketer needs the config_id and the QR image at once, and WeCom's refusal (state
over 30 characters, an unknown member) belongs on the form, not in a retry queue. The
row is reserved first (the `(account, state)` unique constraint), WeCom is called, and
the row is completed — or removed when WeCom refuses.

Rota changes after a customer was added (or when the hour changes) are decided in the
pipeline's transaction and sent through the outbox (`OPERATION`), so handlers do no I/O.
Each queued update carries the complete user list and the code's revision; an update
older than the one WeCom already holds is dropped (`update_on_wecom`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from channels.wecom.api import WeComApi
from channels.wecom.errors import WeComApiError
from channels.wecom.outbound import result_of
from conversations.actions import queue_operation
from conversations.db import Database, utcnow
from conversations.types import Outbound, Purpose, SendResult

from .models import ContactCode, ContactCodeEvent
from .rota import MAX_MEMBERS, MODES, TYPES, Rota, RotaMember, local_day_start

log = logging.getLogger(__name__)

OPERATION = "wecom_contact_way"
MAX_STATE = 30  # characters; WeCom returns it in add_external_contact (doc 92228)
MAX_WELCOME_BYTES = 4000  # send_welcome_msg text (doc 92137)
MAX_ATTACHMENTS = 9
REVISION_TTL = 90 * 86400.0  # far longer than any outbox retry
ATTACHMENT_TYPES = ("image", "link", "miniprogram")
# add_contact_way answers within seconds: a row still "creating" after this was left by
# a crash (or a lost answer) between the reservation and WeCom's reply
STALE_CREATING = timedelta(minutes=2)
# list_contact_way looks for the lost code around the reservation's time
LOOKUP_MARGIN = timedelta(minutes=10)
_STATE_CHARS = re.compile(r"^[0-9A-Za-z_\-.:]+$")

ApiFor = Callable[[int], Awaitable[WeComApi]]


class CodeError(ValueError):
    """A code definition WeCom would refuse, or WeCom's refusal, in readable words."""


@dataclass(frozen=True)
class CodeDraft:
    """A validated code definition from the console form."""

    name: str
    state: str
    code_type: str
    rota_mode: str
    members: tuple[RotaMember, ...]
    backup_userid: str = ""
    skip_verify: bool = True
    tag_ids: tuple[int, ...] = ()
    welcome_text: str = ""
    welcome_attachments: tuple[Mapping[str, Any], ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise CodeError("请填写名称 (name required)")
        if not self.state or len(self.state) > MAX_STATE or not _STATE_CHARS.match(self.state):
            raise CodeError(
                "渠道标识 state 须为 1–30 个字母、数字或 _-.: (state: 1–30 letters, digits, _-.:)"
            )
        if self.code_type not in TYPES:
            raise CodeError("类型须为单人或多人 (type must be single or multi)")
        if self.rota_mode not in MODES:
            raise CodeError("分配方式无效 (unknown rota mode)")
        if not self.members:
            raise CodeError("至少需要一名成员 (at least one member)")
        if len(self.members) > MAX_MEMBERS:
            raise CodeError(f"成员不能超过 {MAX_MEMBERS} 人 (at most {MAX_MEMBERS} members)")
        if len({m.userid for m in self.members}) != len(self.members):
            raise CodeError("成员重复 (a member is listed twice)")
        for m in self.members:
            if not (0 <= m.start_hour < m.end_hour <= 24) or not m.weekdays:
                raise CodeError(f"成员 {m.userid} 的排班无效 (invalid schedule for {m.userid})")
        if len(self.welcome_text.encode()) > MAX_WELCOME_BYTES:
            raise CodeError("欢迎语超过 4000 字节 (welcome over 4000 bytes)")
        if len(self.welcome_attachments) > MAX_ATTACHMENTS:
            raise CodeError("附件最多 9 个 (at most 9 attachments)")
        for item in self.welcome_attachments:
            kind = item.get("msgtype")
            if kind not in ATTACHMENT_TYPES or not isinstance(item.get(kind), Mapping):
                raise CodeError("附件须为图片、链接或小程序 (image, link or miniprogram)")

    def rota(self, tz: ZoneInfo) -> Rota:
        return Rota(self.code_type, self.rota_mode, self.members, self.backup_userid, tz)


def rota_of(code: ContactCode, tz: ZoneInfo) -> Rota:
    return Rota(
        code.code_type,
        code.rota_mode,
        tuple(RotaMember.from_json(m) for m in code.members or []),
        code.backup_userid,
        tz,
    )


def _apply(code: ContactCode, draft: CodeDraft) -> None:
    code.name = draft.name.strip()
    code.code_type = draft.code_type
    code.rota_mode = draft.rota_mode
    code.skip_verify = draft.skip_verify
    code.members = [m.to_json() for m in draft.members]
    code.backup_userid = draft.backup_userid
    code.tag_ids = list(draft.tag_ids)
    code.welcome_text = draft.welcome_text
    code.welcome_attachments = [dict(a) for a in draft.welcome_attachments]


def _contact_way_body(code: ContactCode, users: Sequence[str]) -> dict[str, Any]:
    return {
        "type": 1 if code.code_type == "single" else 2,
        "scene": 2,  # QR code (scene 1 is the mini-program button)
        "remark": code.name[:30],
        "skip_verify": code.skip_verify,
        "state": code.state,
        "user": list(users),
    }


async def added_today(
    session: AsyncSession, code_id: int, now: datetime, tz: ZoneInfo
) -> dict[str, int]:
    """Customers added through the code today (local day in `tz`), per salesperson."""
    rows = await session.execute(
        select(ContactCodeEvent.userid, func.count())
        .where(
            ContactCodeEvent.code_id == code_id,
            ContactCodeEvent.kind == "added",
            ContactCodeEvent.occurred_at >= local_day_start(now, tz),
        )
        .group_by(ContactCodeEvent.userid)
    )
    return {str(userid): int(n) for userid, n in rows.all()}


async def plan_rotation(
    session: AsyncSession, code: ContactCode, now: datetime, tz: ZoneInfo
) -> bool:
    """Queue update_contact_way when the code should offer someone else now (schedules
    and daily limits read in the configured time zone `tz`)."""
    if code.status != "active" or not code.config_id:
        return False
    users = rota_of(code, tz).users_now(
        now,
        await added_today(session, code.id, now, tz),
        last_userid=code.last_userid,
        current=code.current_users or [],
    )
    if users == list(code.current_users or []):
        return False
    code.current_users = users
    code.revision += 1
    await queue_operation(
        session,
        code.account_id,
        recipient=",".join(users)[:255],
        purpose=Purpose.NOTIFICATION,  # a configuration call: no marketing rules apply
        idempotency_key=f"{OPERATION}:{code.id}:{code.revision}",
        payload={
            "operation": OPERATION,
            "config_id": code.config_id,
            "user": users,
            "revision": code.revision,
        },
    )
    log.info("code %s now offers %s (revision %s)", code.id, users, code.revision)
    return True


def _revision_key(config_id: str) -> str:
    return f"wecom:contact_way:{config_id}:revision"


async def record_revision(api: WeComApi, config_id: str, revision: int) -> None:
    """Remember the newest user list WeCom holds, so an older one is never sent after it."""
    await api.state.set(_revision_key(config_id), str(revision), ttl=REVISION_TTL)


async def update_on_wecom(api: WeComApi, message: Outbound) -> SendResult:
    """The outbox side of `plan_rotation`: update_contact_way with the new user list.

    Two queued updates of one code may be dispatched side by side or retried out of
    order; under a per-code lock, one older than what WeCom already holds is dropped."""
    config_id = str(message.payload["config_id"])
    revision = int(message.payload.get("revision", 0))
    body = {"config_id": config_id, "user": list(message.payload["user"])}
    async with api.state.lock(_revision_key(config_id) + ":lock"):
        newest = await api.state.get(_revision_key(config_id))
        if newest is not None and int(newest) >= revision:
            return SendResult.sent(f"{config_id}:superseded")
        try:
            await api.call("POST", "/cgi-bin/externalcontact/update_contact_way", body=body)
        except (WeComApiError, aiohttp.ClientError, TimeoutError) as exc:
            return result_of(exc)
        await record_revision(api, config_id, revision)
    return SendResult.sent(config_id)


async def refresh_rotas(db: Database, tz: ZoneInfo, now: datetime | None = None) -> int:
    """The scheduled job (every few minutes): schedules move with the clock and daily
    limits reset at local midnight (`tz`, the configured settings.tz). How many codes
    changed."""
    at = now or utcnow()
    changed = 0
    async with db.transaction() as s:
        codes = (await s.scalars(select(ContactCode).where(ContactCode.status == "active"))).all()
        for code in codes:
            changed += await plan_rotation(s, code, at, tz)
    return changed


async def _find_on_wecom(
    api: WeComApi, code: ContactCode, known: set[str]
) -> dict[str, Any] | None:
    """The contact way WeCom made for a reserved row, found by its state: the config ids
    list_contact_way gives around the reservation, each read with get_contact_way."""
    body: dict[str, Any] = {
        "start_time": int((code.created_at - LOOKUP_MARGIN).timestamp()),
        "end_time": int((code.created_at + LOOKUP_MARGIN).timestamp()),
        "limit": 1000,
    }
    while True:
        page = await api.call("POST", "/cgi-bin/externalcontact/list_contact_way", body=body)
        for item in page.get("contact_way") or []:
            config_id = str(item.get("config_id", ""))
            if not config_id or config_id in known:
                continue  # another code of ours: no need to ask
            data = await api.call(
                "POST", "/cgi-bin/externalcontact/get_contact_way", body={"config_id": config_id}
            )
            way = data.get("contact_way") or {}
            if way.get("state") == code.state:
                return dict(way)
        cursor = page.get("next_cursor")
        if not cursor:
            return None
        body["cursor"] = cursor


async def reconcile_creating(
    db: Database,
    api_for: ApiFor,
    *,
    now: datetime | None = None,
    account_id: int | None = None,
    state: str | None = None,
) -> int:
    """Settle rows left in "creating" (a crash between reserving the state and WeCom's
    answer): complete the row when WeCom made the code, remove it when WeCom did not, so
    the state can be used again. Rows younger than STALE_CREATING may still be in
    flight and are left alone. How many rows were settled."""
    cutoff = (now or utcnow()) - STALE_CREATING
    query = select(ContactCode).where(
        ContactCode.status == "creating", ContactCode.created_at < cutoff
    )
    if account_id is not None:
        query = query.where(ContactCode.account_id == account_id)
    if state is not None:
        query = query.where(ContactCode.state == state)
    async with db.reading() as s:
        stale = (await s.scalars(query.order_by(ContactCode.id))).all()
        known = {
            str(c)
            for c in (
                await s.scalars(
                    select(ContactCode.config_id).where(ContactCode.config_id.is_not(None))
                )
            ).all()
        }
    settled = 0
    for code in stale:
        try:
            way = await _find_on_wecom(await api_for(code.account_id), code, known)
        except (WeComApiError, aiohttp.ClientError, TimeoutError, LookupError) as exc:
            log.warning("code %s: cannot look up its contact way yet: %s", code.id, exc)
            continue
        async with db.transaction() as s:
            row = await s.get(ContactCode, code.id)
            if row is None or row.status != "creating":
                continue  # settled meanwhile
            if way is None:
                await s.delete(row)
                log.info(
                    "code %s: WeCom never made it; reservation of %r removed", code.id, code.state
                )
            else:
                row.config_id = str(way["config_id"])
                row.qr_code = str(way.get("qr_code", ""))
                row.current_users = list(way.get("user") or row.current_users or [])
                row.status = "active"
                known.add(row.config_id)
                log.info("code %s: completed from WeCom (config_id %s)", code.id, row.config_id)
        settled += 1
    return settled


def _refusal(exc: WeComApiError) -> CodeError:
    return CodeError(f"企业微信拒绝 (WeCom refused): {exc.readable}")


class CodeService:
    """Console actions on codes; `api_for` gives the 客户联系 account's API client."""

    def __init__(self, db: Database, api_for: ApiFor, tz: ZoneInfo) -> None:
        self.db = db
        self.api_for = api_for
        self.tz = tz  # the configured settings.tz: rota schedules and statistics days

    async def create(
        self, account_id: int, draft: CodeDraft, *, actor_id: int | None = None
    ) -> ContactCode:
        now = utcnow()
        # a reservation of this state left by a crash is settled first (completed or freed)
        await reconcile_creating(
            self.db, self.api_for, now=now, account_id=account_id, state=draft.state
        )
        async with self.db.transaction() as s:
            taken = await s.scalar(
                select(ContactCode.id).where(
                    ContactCode.account_id == account_id, ContactCode.state == draft.state
                )
            )
            if taken is not None:
                raise CodeError("该渠道标识已被使用 (state already used by another code)")
            code = ContactCode(account_id=account_id, state=draft.state, created_by=actor_id)
            _apply(code, draft)
            code.current_users = draft.rota(self.tz).users_now(now, {})
            code.status = "creating"
            s.add(code)
            await s.flush()
            code_id = code.id
            body = _contact_way_body(code, code.current_users)
        try:
            data = await (await self.api_for(account_id)).call(
                "POST", "/cgi-bin/externalcontact/add_contact_way", body=body
            )
        except WeComApiError as exc:
            await self._forget(code_id)
            raise _refusal(exc) from exc
        except (aiohttp.ClientError, TimeoutError):
            await self._forget(code_id)
            raise
        async with self.db.transaction() as s:
            row = await s.get(ContactCode, code_id)
            assert row is not None
            row.config_id = str(data["config_id"])
            row.qr_code = str(data.get("qr_code", ""))
            row.status = "active"
        log.info("code %s created: config_id %s", code_id, row.config_id)
        return row

    async def _forget(self, code_id: int) -> None:
        async with self.db.transaction() as s:
            row = await s.get(ContactCode, code_id)
            if row is not None and row.status == "creating":
                await s.delete(row)

    async def update(self, code_id: int, draft: CodeDraft) -> ContactCode:
        """Rewrite the code on WeCom (user list, skip_verify, remark); state is fixed."""
        now = utcnow()
        async with self.db.reading() as s:
            code = await s.get(ContactCode, code_id)
            if code is None or code.status != "active":
                raise CodeError("活码不存在 (no such code)")
            if draft.state != code.state:
                raise CodeError("渠道标识创建后不能修改 (state cannot change)")
            if draft.code_type != code.code_type:
                raise CodeError("类型创建后不能修改 (type cannot change)")
            _apply(code, draft)
            users = draft.rota(self.tz).users_now(
                now, await added_today(s, code_id, now, self.tz), last_userid=code.last_userid
            )
            body = {"config_id": code.config_id, **_contact_way_body(code, users)}
            for fixed in ("type", "scene"):
                body.pop(fixed)  # not updatable
            account_id = code.account_id
        api = await self.api_for(account_id)
        try:
            await api.call("POST", "/cgi-bin/externalcontact/update_contact_way", body=body)
        except WeComApiError as exc:
            raise _refusal(exc) from exc
        async with self.db.transaction() as s:
            row = await s.get(ContactCode, code_id)
            assert row is not None
            _apply(row, draft)
            row.current_users = users
            row.revision += 1
            revision = row.revision
        # rota updates queued before this edit must not undo it
        await record_revision(api, str(body["config_id"]), revision)
        return row

    async def delete(self, code_id: int) -> None:
        """del_contact_way; the row stays (status deleted) so its statistics remain."""
        async with self.db.reading() as s:
            code = await s.get(ContactCode, code_id)
            if code is None or code.status != "active":
                raise CodeError("活码不存在 (no such code)")
            account_id, config_id = code.account_id, code.config_id
        try:
            await (await self.api_for(account_id)).call(
                "POST", "/cgi-bin/externalcontact/del_contact_way", body={"config_id": config_id}
            )
        except WeComApiError as exc:
            raise _refusal(exc) from exc
        async with self.db.transaction() as s:
            row = await s.get(ContactCode, code_id)
            assert row is not None
            row.status = "deleted"
