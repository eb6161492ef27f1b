"""Twilio REST error codes → outcomes (twilio.com/docs/api/errors), and delivery
ErrorCodes on status callbacks → readable reasons."""

from __future__ import annotations

from channels.sms.gateway import ErrorRule
from conversations.types import SendOutcome

FAILED, RETRY = SendOutcome.FAILED, SendOutcome.RETRY

SEND_ERRORS: dict[str, ErrorRule] = {
    "20003": ErrorRule(FAILED, "Twilio rejected the Account SID / Auth Token"),
    "20429": ErrorRule(RETRY, "too many requests to Twilio", 5),
    "21211": ErrorRule(FAILED, "the 'To' number is not a valid phone number"),
    "21408": ErrorRule(FAILED, "sending to this region is not enabled (Geo permissions)"),
    "21606": ErrorRule(FAILED, "the 'From' number cannot send SMS"),
    "21610": ErrorRule(FAILED, "the recipient replied STOP: Twilio blocks messages to them"),
    "21612": ErrorRule(FAILED, "Twilio cannot route to this number"),
    "21614": ErrorRule(FAILED, "the 'To' number is not a mobile number"),
    "30001": ErrorRule(RETRY, "Twilio queue overflow", 60),
    "30002": ErrorRule(FAILED, "the Twilio account is suspended"),
}

DEFAULT_ERROR = ErrorRule(FAILED, "rejected by Twilio")

DELIVERY_REASONS = {
    "30003": "unreachable handset",
    "30004": "message blocked by the recipient or carrier",
    "30005": "unknown destination number",
    "30006": "landline or unreachable carrier",
    "30007": "filtered by the carrier as spam",
    "30008": "unknown delivery error",
}
