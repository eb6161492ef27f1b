"""The adapter as the rest of crmbot sees it: protocol, registry spec, callback refusal."""

from __future__ import annotations

from pathlib import Path

import pytest

from channels.base import ChannelAdapter, Forbidden, RawRequest
from channels.email.adapter import SPECS, EmailAdapter, parse_cursor
from conversations.types import AccountRef, InboundEvent, InboundMessage

from .conftest import channel_context, fixture_bytes

ACCOUNT = AccountRef(
    id=1,
    kind="email",
    name="sales",
    config={
        "address": "sales@example.com",
        "imap_host": "imap.example.com",
        "smtp_host": "smtp.example.com",
    },
    secrets={"password": "app-password"},
)


def request(body: bytes) -> RawRequest:
    return RawRequest(method="POST", url="https://x/", path="/", query={}, headers={}, body=body)


def test_adapter_keeps_the_channel_protocol(tmp_path: Path) -> None:
    adapter = SPECS[0].factory(ACCOUNT, channel_context(tmp_path))

    assert isinstance(adapter, ChannelAdapter)
    assert SPECS[0].kind == EmailAdapter.kind == "email"


async def test_http_callbacks_are_refused(tmp_path: Path) -> None:
    adapter = EmailAdapter(ACCOUNT, channel_context(tmp_path))

    with pytest.raises(Forbidden):
        await adapter.verify(request(b""))


def test_parse_is_pure_and_repeatable(tmp_path: Path) -> None:
    adapter = EmailAdapter(ACCOUNT, channel_context(tmp_path))
    raw = fixture_bytes("foxmail_quote.eml")

    assert adapter.parse(request(raw)) == adapter.parse(request(raw))
    assert not (tmp_path / "media").exists()  # nothing written


def test_mailto_unsubscribe_request_gives_an_event(tmp_path: Path) -> None:
    adapter = EmailAdapter(ACCOUNT, channel_context(tmp_path))
    raw = b"From: buyer@customer.test\r\nTo: sales@example.com\r\nSubject: unsubscribe abc.def\r\nMessage-ID: <u@c.test>\r\n\r\n"

    message, event = adapter.parse(request(raw))

    assert isinstance(message, InboundMessage)
    assert isinstance(event, InboundEvent) and event.event_type == "email.unsubscribe"
    assert event.external_id == "buyer@customer.test"


@pytest.mark.parametrize("value", [None, "", "garbage", "12:x"])
def test_unreadable_cursor_means_start_over(value: str | None) -> None:
    assert parse_cursor(value) is None


def test_folder_names_use_modified_utf7() -> None:
    from channels.email.imap_source import encode_folder

    # RFC 3501 §5.1.3 example: 台北 and 日本語
    assert encode_folder("~peter/mail/台北/日本語") == '"~peter/mail/&U,BTFw-/&ZeVnLIqe-"'
    assert encode_folder("R&D") == '"R&-D"'


class RefusingIdle:
    """An IMAP connection whose server advertises IDLE but refuses it."""

    connected = True
    supports_idle = True
    selected = "INBOX"

    async def idle(self, seconds: float) -> bool:
        from channels.email.errors import ImapError

        raise ImapError("IDLE failed: BAD")

    async def close(self, *, graceful: bool = True) -> None:
        return None


async def test_idle_refused_twice_falls_back_to_a_poll_wait(tmp_path: Path) -> None:
    adapter = EmailAdapter(ACCOUNT, channel_context(tmp_path))
    adapter._imap = RefusingIdle()  # type: ignore[assignment]
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    adapter._sleep = fake_sleep  # type: ignore[method-assign]

    await adapter.wait_for_new(30)  # first failure: return at once, the pull reconnects
    await adapter.wait_for_new(30)  # again soon after: wait instead of spinning

    assert slept == [30]
