"""The app adapter's sends to staff (throttled before WeCom would silently drop), media
upload, the API client's token/limit/busy handling and 'test connection' words."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from channels.base import ChannelContext
from channels.media import MediaStore
from channels.state import MemoryState
from channels.wecom.adapter import WeComAppAdapter
from channels.wecom.contact import WeComContactAdapter
from channels.wecom.errors import WeComApiError
from channels.wecom.simulator import SimApp, WeComSimulator, new_app
from conversations.types import AccountRef, MessageKind, Outbound, Purpose, SendOutcome

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Rig:
    sim: WeComSimulator
    app: SimApp
    ctx: ChannelContext
    clock: Clock
    base: str

    def account(self, kind: str = "wecom.app", **config: Any) -> AccountRef:
        return AccountRef(
            id=1,
            kind=kind,
            name="t",
            config={
                "corp_id": self.app.corp_id,
                "agent_id": self.app.agent_id,
                "api_base": self.base,
                **config,
            },
            secrets={
                "secret": self.app.secret,
                "token": self.app.token,
                "encoding_aes_key": self.app.encoding_aes_key,
            },
        )


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    clock = Clock()
    sim = WeComSimulator(clock=clock)
    app = sim.add_app(new_app("wwappcorp00001"))
    sim.add_member(app.corp_id, "zhangsan")
    server = TestServer(sim.app(), host="127.0.0.1")
    await server.start_server()
    async with aiohttp.ClientSession() as http:
        ctx = ChannelContext(
            http=http,
            state=MemoryState(clock=clock),
            media=MediaStore(tmp_path / "media"),
            public_url="http://127.0.0.1",
        )
        yield Rig(sim, app, ctx, clock, str(server.make_url("")).rstrip("/"))
    await server.close()


def _msg(
    account: AccountRef,
    key: str,
    kind: MessageKind = MessageKind.TEXT,
    text: str = "新线索：王先生",
    to: str = "zhangsan",
    **payload: Any,
) -> Outbound:
    return Outbound(
        key=key,
        account=account,
        recipient=to,
        kind=kind,
        text=text,
        purpose=Purpose.NOTIFICATION,
        payload=payload,
    )


async def test_staff_notifications_never_exceed_30_per_minute_per_member(rig: Rig) -> None:
    adapter = WeComAppAdapter(rig.account(), rig.ctx)
    sent_at: list[float] = []
    for i in range(120):
        while True:
            result = await adapter.send(_msg(adapter.account, f"n{i}", text=f"通知 {i}"))
            if result.outcome == SendOutcome.SENT:
                sent_at.append(rig.clock.now)
                break
            assert result.outcome == SendOutcome.RETRY and result.retry_after is not None
            rig.clock.now += result.retry_after.total_seconds()
    assert rig.sim.dropped == []  # WeCom would have dropped the excess silently
    assert len(rig.sim.sent) == 120
    assert max(sum(1 for t in sent_at if start <= t < start + 60) for start in sent_at) <= 30
    # and it still moves at close to the limits: past the first 20, the hourly 1,000
    # (980/h in the bucket) is what paces 120 messages
    assert sent_at[-1] - sent_at[0] <= (120 - 20) / (980 / 3600) + 5


async def test_image_and_file_are_uploaded_once_and_sent(rig: Rig) -> None:
    adapter = WeComAppAdapter(rig.account(), rig.ctx)
    stored = rig.ctx.media.put(PNG, "quote.png")
    media = {"sha256": stored.sha256, "mime": stored.mime, "filename": "quote.png"}
    for i in range(2):
        result = await adapter.send(
            _msg(adapter.account, f"img{i}", MessageKind.IMAGE, "", media=media)
        )
        assert result.outcome == SendOutcome.SENT
        rig.clock.now += 5  # the per-member pace
    result = await adapter.send(_msg(adapter.account, "f1", MessageKind.FILE, "", media=media))
    assert result.outcome == SendOutcome.SENT
    # the same image twice within 30 minutes is shown once (enable_duplicate_check)
    assert [m.msgtype for m in rig.sim.sent] == ["image", "file"]
    assert rig.sim.calls["/cgi-bin/media/upload"] == 2  # one per media type, cached after


async def test_textcard_for_staff(rig: Rig) -> None:
    adapter = WeComAppAdapter(rig.account(), rig.ctx)
    card = {
        "title": "新线索分配给你",
        "description": "王先生 询问报价",
        "url": "https://crm.example/c/1",
    }
    result = await adapter.send(_msg(adapter.account, "card", MessageKind.RICH, "", card=card))
    assert result.outcome == SendOutcome.SENT
    assert rig.sim.sent[0].body["textcard"]["title"] == "新线索分配给你"


async def test_missing_stored_file_fails_readably(rig: Rig) -> None:
    adapter = WeComAppAdapter(rig.account(), rig.ctx)
    result = await adapter.send(
        _msg(adapter.account, "x", MessageKind.IMAGE, "", media={"sha256": "a" * 64})
    )
    assert (result.outcome, result.error_code) == (SendOutcome.FAILED, "missing_media")


@pytest.mark.parametrize(
    ("trouble", "code", "words"),
    [
        ("ip", 60020, "企业可信IP"),
        ("secret", 40001, "Secret"),
        ("corp", 40013, "企业 ID"),
        ("permission", 48002, "权限"),
    ],
)
async def test_connection_check_explains_in_plain_words(
    rig: Rig, trouble: str, code: int, words: str
) -> None:
    account = rig.account("wecom.contact")
    if trouble == "ip":
        rig.sim.fail_next["/cgi-bin/gettoken"] = [60020]
    elif trouble == "secret":
        account = AccountRef(
            1, account.kind, "t", account.config, {**account.secrets, "secret": "wrong"}
        )
    elif trouble == "corp":
        account = AccountRef(
            1, account.kind, "t", {**account.config, "corp_id": "wwnobody"}, account.secrets
        )
    else:
        rig.sim.fail_next["/cgi-bin/externalcontact/get_follow_user_list"] = [48002]
    check = await WeComContactAdapter(account, rig.ctx).check_connection()
    assert not check.ok and check.detail["errcode"] == code and words in check.message
    assert "(" in check.message  # Chinese first, then English for the console


async def test_connection_check_ok(rig: Rig) -> None:
    check = await WeComAppAdapter(rig.account(), rig.ctx).check_connection()
    assert check.ok


async def test_expired_token_is_refreshed_once(rig: Rig) -> None:
    adapter = WeComAppAdapter(rig.account(), rig.ctx)
    await adapter.api.access_token()
    rig.sim.expire_tokens()
    rig.clock.now += 1  # the cached token is still valid on our side
    assert (await adapter.send(_msg(adapter.account, "t1"))).outcome == SendOutcome.SENT
    assert rig.sim.token_calls == 2


async def test_busy_is_retried_with_jitter(rig: Rig) -> None:
    adapter = WeComAppAdapter(rig.account(), rig.ctx)
    rig.sim.fail_next["/cgi-bin/message/send"] = [-1, -1]
    assert (await adapter.send(_msg(adapter.account, "b1"))).outcome == SendOutcome.SENT
    assert rig.sim.errors[-1] == 2


async def test_frequency_limit_answer_cools_every_caller_down(rig: Rig) -> None:
    rig.sim.api_rate_per_minute = 2
    adapter = WeComAppAdapter(rig.account(), rig.ctx)
    for i in range(4):
        rig.sim.add_member(rig.app.corp_id, f"member{i}")
    outcomes = [
        await adapter.send(_msg(adapter.account, f"f{i}", text=f"m{i}", to=f"member{i}"))
        for i in range(4)
    ]
    assert [o.outcome for o in outcomes] == [
        SendOutcome.SENT,
        SendOutcome.SENT,
        SendOutcome.RETRY,
        SendOutcome.RETRY,
    ]
    assert outcomes[2].error_code == outcomes[3].error_code == "45009"
    assert rig.sim.errors[45009] == 1  # the second refusal came from our own cool-down
    rig.clock.now += 61
    assert (await adapter.send(_msg(adapter.account, "after"))).outcome == SendOutcome.SENT


async def test_api_error_is_a_normal_exception(rig: Rig) -> None:
    adapter = WeComAppAdapter(rig.account(), rig.ctx)
    with pytest.raises(WeComApiError) as info:
        await adapter.api.call(
            "GET", "/cgi-bin/externalcontact/get", params={"external_userid": "wmnone"}
        )
    assert info.value.errcode == 40096 and "外部联系人" in str(info.value)


def test_rate_limit_bucket_keeps_every_window_under_the_limit_near_full_rate() -> None:
    import asyncio
    import bisect

    from channels.wecom.api import RateLimit

    limit = RateLimit(calls=1200, seconds=10)
    clock = Clock()
    state = MemoryState(clock=clock)
    grants: list[float] = []

    async def greedy() -> None:
        while clock.now < 1000 + 60:
            wait = await state.take("api", limit.rate, limit.burst)
            if wait > 0:
                clock.now += max(wait, 1e-6)  # float rounding leaves waits of 1e-12 s
            else:
                grants.append(clock.now)

    asyncio.run(greedy())
    worst = max(
        bisect.bisect_left(grants, start + limit.seconds) - i for i, start in enumerate(grants)
    )
    assert worst <= 0.99 * limit.calls
    assert len(grants) / 60 >= 0.97 * limit.calls / limit.seconds


async def test_each_secret_has_its_own_token_fetched_once_under_concurrency(rig: Rig) -> None:
    import asyncio

    from channels.wecom.api import WeComApi

    other = rig.sim.add_app(new_app(rig.app.corp_id, agent_id=0))  # e.g. the 客户联系 secret
    apis = [
        WeComApi(
            rig.ctx.http,
            rig.ctx.state,
            corp_id=rig.app.corp_id,
            secret=app.secret,
            base_url=rig.base,
        )
        for app in (rig.app, other)
    ]
    tokens = await asyncio.gather(*(api.access_token() for api in apis for _ in range(10)))
    assert len(set(tokens[:10])) == 1 and len(set(tokens[10:])) == 1
    assert tokens[0] != tokens[10]
    assert rig.sim.token_calls == 2  # single flight per secret
