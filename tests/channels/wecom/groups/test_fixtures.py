"""Every change_external_chat variant crmbot handles has a documented fixture, and each
fixture parses to the variant it is named for."""

from __future__ import annotations

from channels.wecom.groups.events import GROUP_CHANGES, changed_members
from channels.wecom.inbound import to_inbound
from conversations.types import InboundEvent
from tests.channels.wecom.groups.scene import FIXTURES, chat_fixture, fixture_names


def test_every_fixture_names_its_doc_page() -> None:
    for path in FIXTURES.iterdir():
        head = path.read_text(encoding="utf-8").split("-->")[0]
        assert "developer.work.weixin.qq.com/document/path/92130" in head, path.name


def _variant(name: str) -> tuple[str, str]:
    event = to_inbound(chat_fixture(name, "wwcorp"))
    assert isinstance(event, InboundEvent)
    return (
        event.event_type.removeprefix("wecom.change_external_chat."),
        str(event.payload.get("UpdateDetail") or ""),
    )


def test_every_group_change_has_a_fixture() -> None:
    covered = {_variant(n) for n in fixture_names()}
    assert covered == GROUP_CHANGES


def test_fixture_names_match_their_variant() -> None:
    for name in fixture_names():
        change, detail = _variant(name)
        assert name == (f"{change}_{detail}" if detail else change)


def test_member_list_items_are_read_from_the_nested_xml() -> None:
    event = to_inbound(chat_fixture("update_add_member", "wwcorp"))
    assert isinstance(event, InboundEvent)
    assert changed_members(event.payload) == ["wmOgQhDgAAuXFJGwbve4g4iXknfOAAAA", "Rose"]
