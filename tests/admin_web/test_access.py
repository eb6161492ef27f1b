"""Who may read which conversation, enforced in the service layer and audited."""

from __future__ import annotations

import aiohttp
from sqlalchemy import select

from conversations.models import AuditEntry
from tests.admin_web.people import Org, api_token, bearer
from tests.system import System, eventually


async def _audit(console: System, action: str) -> list[AuditEntry]:
    async with console.services.db.reading() as s:
        return list((await s.scalars(select(AuditEntry).where(AuditEntry.action == action))).all())


async def test_sales_is_denied_another_salespersons_conversation(console: System, org: Org) -> None:
    http = await console.login("sales_a")
    try:
        resp = await http.get(f"{console.base}/conversations/{org.conversations['sales_b']}")
        assert resp.status == 403
    finally:
        await http.close()


async def test_a_denied_read_is_in_the_audit_log(console: System, org: Org) -> None:
    http = await console.login("sales_a")
    try:
        await http.get(f"{console.base}/conversations/{org.conversations['sales_b']}")
    finally:
        await http.close()
    denied = await _audit(console, "conversation_denied")
    assert [(e.actor_id, e.target_id) for e in denied] == [
        (org.staff["sales_a"], str(org.conversations["sales_b"]))
    ]


async def test_sales_sees_own_and_unassigned_in_the_inbox(console: System, org: Org) -> None:
    http = await console.login("sales_a")
    try:
        page = await (await http.get(f"{console.base}/inbox")).text()
    finally:
        await http.close()
    assert f'data-conversation="{org.conversations["sales_a"]}"' in page
    assert f'data-conversation="{org.conversations["unassigned"]}"' in page
    assert f'data-conversation="{org.conversations["sales_b"]}"' not in page
    assert f'data-conversation="{org.conversations["sales_a2"]}"' not in page


async def test_manager_reviewing_a_team_members_conversation_is_audited(
    console: System, org: Org
) -> None:
    http = await console.login("manager_a")
    try:
        resp = await http.get(f"{console.base}/conversations/{org.conversations['sales_a2']}")
        assert resp.status == 200
        other_team = await http.get(f"{console.base}/conversations/{org.conversations['sales_b']}")
        assert other_team.status == 403
    finally:
        await http.close()
    viewed = await _audit(console, "conversation_viewed")
    assert [e.target_id for e in viewed] == [str(org.conversations["sales_a2"])]


async def test_marketer_reads_no_private_conversation(console: System, org: Org) -> None:
    http = await console.login("marketer")
    try:
        resp = await http.get(f"{console.base}/conversations/{org.conversations['unassigned']}")
        assert resp.status == 403
    finally:
        await http.close()


async def test_api_denies_sales_another_salespersons_conversation(
    console: System, org: Org
) -> None:
    token = await api_token(console, "sales_a")
    async with aiohttp.ClientSession() as http:
        url = f"{console.base}/api/v1/conversations/{org.conversations['sales_b']}"
        resp = await http.get(url, headers=bearer(token))
        assert resp.status == 403
        assert (await resp.json())["error"] == "forbidden"
        msgs = await http.get(f"{url}/messages", headers=bearer(token))
        assert msgs.status == 403
        own = await http.get(
            f"{console.base}/api/v1/conversations/{org.conversations['sales_a']}",
            headers=bearer(token),
        )
        assert own.status == 200
    await eventually(lambda: _audit(console, "conversation_denied"))
