"""Messages API: POST /2010-04-01/Accounts/{Sid}/Messages.json (form), Basic auth;
look-up: GET …/Messages.json?To=…&DateSent>=… (twilio.com/docs/messaging/api/message-resource)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from channels.sms.gateway import SmsRequest, map_error
from conversations.types import MessageStatus, SendOutcome, SendResult

from .config_check import TwilioConfig
from .errors import DEFAULT_ERROR, SEND_ERRORS


def messages_path(config: TwilioConfig) -> str:
    return f"/2010-04-01/Accounts/{config.account_sid}/Messages.json"


def send_form(request: SmsRequest, config: TwilioConfig) -> dict[str, str]:
    form = {"To": request.phone, "Body": request.text}
    if config.messaging_service_sid:
        form["MessagingServiceSid"] = config.messaging_service_sid
    else:
        form["From"] = str(config.from_number)
    if config.status_callback_url:
        # our key rides in the callback URL, so receipts find the outbox row directly
        form["StatusCallback"] = (
            f"{config.status_callback_url}?{urlencode({'outbox_key': request.key})}"
        )
    return form


def send_result(status: int, body: Mapping[str, Any]) -> SendResult:
    if 200 <= status < 300 and body.get("sid"):
        return SendResult.sent(str(body["sid"]))
    if status >= 500:
        return SendResult(
            SendOutcome.UNKNOWN, error_code=f"http_{status}", reason="Twilio server error"
        )
    code = str(body.get("code") or f"http_{status}")
    return map_error(SEND_ERRORS, code, str(body.get("message", "")), default=DEFAULT_ERROR)


def lookup_query(request: SmsRequest, config: TwilioConfig, since: float) -> dict[str, str]:
    day = datetime.fromtimestamp(since, UTC).strftime("%Y-%m-%d")
    query = {"To": request.phone, "DateSent>": day, "PageSize": "50"}
    if config.from_number:
        query["From"] = config.from_number
    return query


_FINAL = {"delivered": MessageStatus.DELIVERED, "failed": MessageStatus.FAILED,
          "undelivered": MessageStatus.FAILED, "read": MessageStatus.READ}  # fmt: skip


def find_sent(body: Mapping[str, Any], request: SmsRequest) -> SendResult | None:
    """Twilio keeps no idempotency key: the same body to the same number is our send."""
    for item in body.get("messages") or []:
        if item.get("to") == request.phone and item.get("body") == request.text:
            status = _FINAL.get(str(item.get("status")), MessageStatus.SENT)
            return SendResult(
                SendOutcome.SENT, provider_message_id=str(item.get("sid")), status=status
            )
    return None
