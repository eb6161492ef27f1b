"""A running crmbot with a 客户联系 account, two salespeople and the codes service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from channels.wecom.api import WeComApi
from channels.wecom.codes.rota import CHINA, RotaMember
from channels.wecom.codes.service import CodeDraft, CodeService
from conversations.access import Role
from conversations.models import StaffUser
from tagging.tags import create_group, create_tag
from tests.channels.wecom.world import Account, add_account
from tests.system import System

CORP = "wwcodescorp0001"


@dataclass
class CodesWorld:
    system: System
    account: Account
    service: CodeService
    staff: dict[str, int]  # userid → staff id
    tags: dict[str, int]  # tag name → id

    @property
    def callback_url(self) -> str:
        return self.system.callback_url("wecom.contact", self.account.token)


async def api_for(system: System, account_id: int) -> WeComApi:
    loaded = await system.services.accounts.by_id(account_id)
    assert loaded is not None
    api: WeComApi = loaded.adapter.api  # type: ignore[attr-defined]
    return api


async def codes_world(system: System, userids: tuple[str, ...] = ("lisi", "wangwu")) -> CodesWorld:
    account = await add_account(system, "wecom.contact", CORP)
    staff: dict[str, int] = {}
    for userid in userids:
        system.sim.add_member(CORP, userid)
        staff_id = await system.add_staff(userid, Role.SALES)
        async with system.services.db.transaction() as s:
            user = await s.get(StaffUser, staff_id)
            assert user is not None
            user.wecom_userid = userid
        staff[userid] = staff_id
    async with system.services.db.transaction() as s:
        source = await create_group(s, "来源")
        intent = await create_group(s, "意向", exclusive=True)
        tags = {
            "海报": (await create_tag(s, source, "海报")).id,
            "已成交": (await create_tag(s, intent, "已成交")).id,
        }

    async def for_account(account_id: int) -> WeComApi:
        return await api_for(system, account_id)

    return CodesWorld(
        system, account, CodeService(system.services.db, for_account, CHINA), staff, tags
    )


def draft(**overrides: Any) -> CodeDraft:
    """A two-person round-robin single code with a poster source tag and a welcome."""
    values: dict[str, Any] = {
        "name": "地铁海报",
        "state": "poster-metro",
        "code_type": "single",
        "rota_mode": "round_robin",
        "members": (RotaMember("lisi"), RotaMember("wangwu")),
        "welcome_text": "感谢扫码！地铁海报专享优惠",
        "welcome_attachments": (
            {"msgtype": "link", "link": {"title": "优惠券", "url": "https://example.com/c"}},
        ),
    }
    values.update(overrides)
    return CodeDraft(**values)
