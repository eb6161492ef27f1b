"""客户群群发 (add_msg_template with chat_type group) against the simulator, checked with
the documented request and result shapes (fixtures/group_send, doc 92135 and 93338):
the sender is required, chat_id_list is for groups only and must name the sender's own
groups, and the results name the group (chat_id), not a customer."""

from __future__ import annotations

import json
from typing import Any

import pytest

from channels.wecom.api import WeComApi
from channels.wecom.errors import WeComApiError
from channels.wecom.group_send import GROUP, GroupSendError, create_group_send
from conversations.models import ChannelAccount
from tests.channels.wecom.groups.scene import api_of, contact_account
from tests.channels.wecom.world import FIXTURES
from tests.system import System

CORP = "wwgroupsendgrp1"
PATH = "/cgi-bin/externalcontact/add_msg_template"


def _documented(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (FIXTURES / "group_send" / f"{name}.json").read_text(encoding="utf-8")
    )
    data.pop("_source")
    return data


async def _world(system: System) -> tuple[WeComApi, list[str], str]:
    """zhangsan owns two groups, lisi one."""
    account = await contact_account(system, CORP)
    sim = system.sim.groups
    own = [sim.create_group(CORP, "zhangsan", f"群{n}").chat_id for n in range(2)]
    other = sim.create_group(CORP, "lisi", "李四的群").chat_id
    return await api_of(system, account), own, other


async def _errcode(api: WeComApi, body: dict[str, Any]) -> int:
    with pytest.raises(WeComApiError) as caught:
        await api.call("POST", PATH, body=body)
    return caught.value.errcode


async def test_documented_group_request_is_accepted_for_the_senders_groups(
    sqlite_system: System,
) -> None:
    api, own, _other = await _world(sqlite_system)
    body = {**_documented("add_msg_template_group"), "chat_id_list": own}
    data = await api.call("POST", PATH, body=body)
    task = sqlite_system.sim.contacts.group_sends[data["msgid"]]
    assert (task.chat_type, task.sender, task.external_userids) == ("group", "zhangsan", own)


async def test_group_send_without_sender_is_refused(sqlite_system: System) -> None:
    api, own, _other = await _world(sqlite_system)
    body = {**_documented("add_msg_template_group"), "chat_id_list": own}
    del body["sender"]
    assert await _errcode(api, body) == 40058


async def test_chat_id_list_on_a_single_send_is_refused(sqlite_system: System) -> None:
    api, own, _other = await _world(sqlite_system)
    body = {**_documented("add_msg_template_group"), "chat_type": "single", "chat_id_list": own}
    assert await _errcode(api, body) == 40058


async def test_groups_of_another_owner_are_refused(sqlite_system: System) -> None:
    api, own, other = await _world(sqlite_system)
    body = {**_documented("add_msg_template_group"), "chat_id_list": [own[0], other]}
    assert await _errcode(api, body) == 40058


async def test_group_results_name_the_group_with_the_documented_fields(
    sqlite_system: System,
) -> None:
    api, own, _other = await _world(sqlite_system)
    body = {**_documented("add_msg_template_group"), "chat_id_list": own}
    msgid = (await api.call("POST", PATH, body=body))["msgid"]
    sqlite_system.sim.contacts.confirm_group_send(msgid, "zhangsan", [own[0]])
    data = await api.call(
        "POST",
        "/cgi-bin/externalcontact/get_groupmsg_send_result",
        body={"msgid": msgid, "userid": "zhangsan"},
    )
    documented = _documented("get_groupmsg_send_result_group")["send_list"][0]
    sent = next(r for r in data["send_list"] if r["status"] == 1)
    assert set(sent) == set(documented)
    assert {r["chat_id"]: r["status"] for r in data["send_list"]} == {own[0]: 1, own[1]: 0}


async def test_a_group_task_needs_its_sender_before_it_is_queued(sqlite_system: System) -> None:
    account = await contact_account(sqlite_system, CORP)
    async with sqlite_system.services.db.transaction() as s:
        row = await s.get(ChannelAccount, account.id)
        assert row is not None
        with pytest.raises(GroupSendError):
            await create_group_send(
                s, row, key="k1", text="t", external_userids=(), chat_ids=["wr1"], chat_type=GROUP
            )
        with pytest.raises(GroupSendError):
            await create_group_send(
                s, row, key="k2", text="t", external_userids=["wm1"], chat_ids=["wr1"]
            )
