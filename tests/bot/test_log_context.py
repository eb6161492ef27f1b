"""Structured logs carry the ids bound from callback to outbound send."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import pytest

from bot import log_context


@pytest.fixture
def json_log() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(log_context.ContextFilter())
    handler.setFormatter(log_context.JsonFormatter())
    logger = logging.getLogger("test.log_context")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, out
    logger.removeHandler(handler)


def _lines(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_json_line_carries_bound_ids(json_log: tuple[logging.Logger, io.StringIO]) -> None:
    logger, out = json_log
    with log_context.bind(request_id="r1", message_id=42):
        logger.info("stored %s", "message")
    (line,) = _lines(out)
    assert line["msg"] == "stored message"
    assert (line["request_id"], line["message_id"], line["level"]) == ("r1", "42", "info")


def test_ids_are_unbound_after_the_block(json_log: tuple[logging.Logger, io.StringIO]) -> None:
    logger, out = json_log
    with log_context.bind(request_id="r1"):
        pass
    logger.info("later")
    assert "request_id" not in _lines(out)[0]


def test_extra_fields_and_chinese_text_are_kept(
    json_log: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, out = json_log
    logger.info("自动回复已发送", extra={"channel": "wecom.app"})
    (line,) = _lines(out)
    assert line["msg"] == "自动回复已发送"
    assert line["channel"] == "wecom.app"
    assert "自动回复" in out.getvalue()  # readable, not \\u-escaped


async def test_ids_follow_into_tasks_but_not_back_out() -> None:
    seen: list[dict[str, str]] = []

    async def handler() -> None:
        with log_context.bind(outbox_id=9):
            seen.append(log_context.snapshot())

    with log_context.bind(message_id=5):
        await asyncio.create_task(handler())
        seen.append(log_context.snapshot())
    assert seen == [{"message_id": "5", "outbox_id": "9"}, {"message_id": "5"}]


def test_restore_ignores_unknown_ids_from_newer_senders() -> None:
    with log_context.restore({"request_id": "r9", "tenant": "x"}):
        assert log_context.snapshot() == {"request_id": "r9"}


def test_binding_an_unknown_id_is_a_programming_error() -> None:
    with pytest.raises(KeyError), log_context.bind(customer="x"):
        pass


def test_text_format_appends_ids() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "sent", None, None)
    with log_context.bind(message_id=3):
        log_context.ContextFilter().filter(record)
    assert log_context.TextFormatter().format(record).endswith("sent [message_id=3]")
