"""Inbound message and status-callback webhooks (form posts, signed).

"Twilio's request to your incoming message Webhook URL"
twilio.com/docs/messaging/guides/webhook-request; "Track the Message Status of Outbound
Messages" twilio.com/docs/messaging/guides/track-outbound-message-status."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qsl

from channels.base import MalformedPayload, RawRequest
from channels.sms.phone import InvalidPhone, normalise_phone
from conversations.types import Inbound, InboundMessage, MessageKind, MessageStatus, StatusUpdate

from .errors import DELIVERY_REASONS

EMPTY_TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>'

STATUS = {
    "sent": MessageStatus.SENT,
    "delivered": MessageStatus.DELIVERED,
    "read": MessageStatus.READ,
    "partially_delivered": MessageStatus.DELIVERED,
    "undelivered": MessageStatus.FAILED,
    "failed": MessageStatus.FAILED,
    "canceled": MessageStatus.CANCELLED,
}  # queued / accepted / scheduled / sending say nothing new: no update


def form_params(request: RawRequest) -> list[tuple[str, str]]:
    if request.method.upper() != "POST":
        return []
    try:
        return parse_qsl(request.body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise MalformedPayload("Twilio webhook body is not UTF-8") from None


def parse_webhook(request: RawRequest, received_at: datetime | None = None) -> Sequence[Inbound]:
    params = dict(form_params(request)) or dict(request.query)
    sid = params.get("MessageSid") or params.get("SmsSid")
    if not sid:
        raise MalformedPayload("Twilio webhook without MessageSid")
    # Twilio sends no timestamp: the request's own Date header is the best stable time
    when = received_at or _date_header(request.headers)
    status_name = params.get("MessageStatus")
    if status_name is not None:
        status = STATUS.get(status_name)
        if status is None:
            return []
        code = params.get("ErrorCode") or None
        return [
            StatusUpdate(
                provider_key=f"{sid}:{status_name}",
                status=status,
                occurred_at=when,
                provider_message_id=sid,
                outbox_key=request.query.get("outbox_key") or None,
                error_code=code,
                reason=None
                if code is None
                else f"{code}: {DELIVERY_REASONS.get(code, 'delivery failed')}",
                raw=request.body.decode("utf-8", "replace"),
            )
        ]
    sender = params.get("From", "")
    try:
        external_id = normalise_phone(sender)
        hints: Mapping[str, str] = {"phone": external_id}
    except InvalidPhone:
        external_id, hints = sender, {}
    media = {k: v for k, v in params.items() if k.startswith(("MediaUrl", "MediaContentType"))}
    return [
        InboundMessage(
            provider_key=sid,
            external_id=external_id,
            kind=MessageKind.TEXT,
            text=params.get("Body", ""),
            occurred_at=when,
            raw=request.body.decode("utf-8", "replace"),
            payload={"to": params.get("To", ""), **media},
            contact_hints=hints,
            provider_message_id=sid,
        )
    ]


def _date_header(headers: Mapping[str, str]) -> datetime:
    for name, value in headers.items():
        if name.lower() == "date":
            try:
                return parsedate_to_datetime(value).astimezone(UTC)
            except (TypeError, ValueError):
                break
    return datetime(1970, 1, 1, tzinfo=UTC)  # pure: never the wall clock
