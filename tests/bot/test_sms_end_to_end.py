"""Issue 4 through the whole running system (callback route, pipeline, outbox) on the
Aliyun simulator: console reply → receipt → customer reply → 退订 → suppressed."""

from __future__ import annotations

import re
import secrets

from sqlalchemy import select

from channels.sms.aliyun.simulator import AliyunSimulator, simulated_account
from conversations import consent
from conversations.access import Role
from conversations.models import ChannelAccount, Conversation, Message
from tests.system import System, eventually


async def test_sms_reply_receipt_and_opt_out_through_the_running_system(
    sqlite_system: System,
) -> None:
    system = sqlite_system
    token = secrets.token_urlsafe(16)
    async with AliyunSimulator(callback_url=f"{system.base}/callbacks/sms.aliyun/{token}") as sim:
        ref = simulated_account(sim)
        async with system.services.db.transaction() as s:
            s.add(
                ChannelAccount(
                    kind="sms.aliyun",
                    name=ref.name,
                    config=dict(ref.config),
                    secrets=system.services.secrets.seal(dict(ref.secrets)),
                    callback_token=token,
                )
            )
        # the customer writes first (上行短信) …
        assert (await sim.push_reply("13800138000", "你们周末营业吗"))[0] == 200

        async def conversation() -> Conversation | None:
            async with system.services.db.reading() as s:
                return (await s.scalars(select(Conversation))).first()

        conv = await eventually(conversation)
        await system.add_staff("li", Role.SALES)
        console = await system.login("li")
        try:
            page = await (await console.get(f"{system.base}/conversations/{conv.id}")).text()
            assert "你们周末营业吗" in page
            csrf = re.search(r'name="_csrf" value="([^"]+)"', page)
            assert csrf
            await console.post(
                f"{system.base}/conversations/{conv.id}/reply",
                data={
                    "_csrf": csrf.group(1),
                    "text": "周末 9:00-18:00 营业",
                    "idempotency_key": "r1",
                },
            )
        finally:
            await console.close()
        # … the reply reaches the gateway once and its receipt marks it delivered
        await eventually(lambda: _async(sim.count_for("+8613800138000") == 1))
        assert (await sim.push_receipt(sim.sent[0].message_id))[0] == 200

        async def delivered() -> bool:
            async with system.services.db.reading() as s:
                out = (await s.scalars(select(Message).where(Message.direction == "out"))).one()
                return out.status == "delivered"

        await eventually(delivered)
        # 退订 puts the number on the do-not-contact list, with one confirmation
        assert (await sim.push_reply("13800138000", " 退订 "))[0] == 200

        async def suppressed() -> bool:
            async with system.services.db.reading() as s:
                return await consent.is_suppressed(
                    s, channel="sms", address="+8613800138000", scope=sim.sign_name
                )

        await eventually(suppressed)


async def _async(value: bool) -> bool:
    return value
