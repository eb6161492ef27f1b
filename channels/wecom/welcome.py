"""Welcome messages (欢迎语) through send_welcome_msg (doc 92137).

The welcome_code of an add_external_contact event is valid 20 seconds and usable once;
if another app or the admin's own welcome message greeted first, WeCom answers 41051.
The text is configured per account and per salesperson and may name the customer:
`{name}` is filled in at send time (one externalcontact/get), not in the handler,
because handlers do no network I/O.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp

from conversations.types import Outbound, SendResult

from .api import WeComApi
from .errors import WeComApiError
from .outbound import failed, result_of

WELCOME_VALIDITY = 20  # seconds
MAX_TEXT_BYTES = 4000


def welcome_template(config: Mapping[str, Any], userid: str) -> str | None:
    """The account's welcome text for a salesperson: `welcome.by_staff[userid]`, else
    `welcome.default`; None when the account sends no welcome message."""
    welcome = config.get("welcome") or {}
    by_staff = welcome.get("by_staff") or {}
    text = by_staff.get(userid) or welcome.get("default")
    return str(text) if text else None


def render(template: str, name: str) -> str:
    return template.replace("{name}", name).strip()


def welcome_key(account_id: int, code: str) -> str:
    """The outbox key of a welcome: one per welcome_code, which WeCom accepts once."""
    return f"welcome:{account_id}:{code}"


def welcome_payload(
    code: str,
    template: str,
    userid: str,
    event_time: float,
    attachments: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The outbox payload an add_external_contact handler queues."""
    payload: dict[str, Any] = {
        "operation": "welcome",
        "kind": "text",
        "text": template,
        "welcome_code": code,
        "userid": userid,
        "event_time": event_time,
    }
    if attachments:
        payload["attachments"] = [dict(a) for a in attachments]
    return payload


async def send_welcome(api: WeComApi, message: Outbound, *, now: float | None = None) -> SendResult:
    """Send one welcome message; 41051 and an expired code are final, never retried."""
    payload = message.payload
    age = (now if now is not None else time.time()) - float(payload.get("event_time", 0))
    if age > 10 * WELCOME_VALIDITY:
        # far past the 20 s window (e.g. after an outage): calling cannot succeed
        return failed(
            "welcome_expired", f"欢迎语已过期（{int(age)} 秒前添加） (welcome code expired)"
        )
    template = str(payload.get("text", ""))
    name = ""
    if "{name}" in template:
        try:
            data = await api.call(
                "GET",
                "/cgi-bin/externalcontact/get",
                params={"external_userid": message.recipient},
            )
            name = str((data.get("external_contact") or {}).get("name", ""))
        except (WeComApiError, aiohttp.ClientError, TimeoutError):
            name = ""  # the window is short: greet without the name rather than not at all
    text = render(template, name)
    if len(text.encode()) > MAX_TEXT_BYTES:
        return failed("text_too_long", "欢迎语超过 4000 字节 (welcome over 4000 bytes)")
    body: dict[str, Any] = {"welcome_code": payload["welcome_code"], "text": {"content": text}}
    if payload.get("attachments"):
        body["attachments"] = list(payload["attachments"])[:9]
    try:
        await api.call("POST", "/cgi-bin/externalcontact/send_welcome_msg", body=body)
    except WeComApiError as exc:
        if exc.errcode == 41051:
            # someone greeted first (another app, the admin's welcome): done, not an error
            return failed("41051", exc.readable)
        return result_of(exc)
    except (aiohttp.ClientError, TimeoutError) as exc:
        return result_of(exc)
    return SendResult.sent(f"welcome:{payload['welcome_code']}")
