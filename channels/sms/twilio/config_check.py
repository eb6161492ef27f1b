"""Settings of an `sms.twilio` account.

config:  account_sid, from_number (E.164) or messaging_service_sid, status_callback_url
         (optional: crmbot's callback URL for this account, so receipts carry our key),
         shared keys of `channels.sms.account` (templates optional: Twilio sends free text)
secrets: auth_token, webhook_shared_key (only when webhooks are signed with HMAC-SHA256)
"""

from __future__ import annotations

from dataclasses import dataclass

from channels.sms.account import ConfigProblems, SmsSettings, read_settings, require
from channels.sms.templates import VariableStyle
from conversations.types import AccountRef

KIND = "sms.twilio"
DEFAULT_ENDPOINT = "https://api.twilio.com"
DEFAULT_RATE = 1.0  # a US long code sends about one segment per second


@dataclass(frozen=True)
class TwilioConfig:
    sms: SmsSettings
    account_sid: str
    auth_token: str
    from_number: str | None
    messaging_service_sid: str | None
    status_callback_url: str | None
    webhook_shared_key: str | None


def load_config(account: AccountRef) -> TwilioConfig:
    problems: list[str] = []
    sms = read_settings(
        KIND, account.config, VariableStyle.NAMED, default_rate=DEFAULT_RATE,
        default_grace=120.0, problems=problems,
    )  # fmt: skip
    sid = require(account.config, "account_sid", "config", problems)
    token = require(account.secrets, "auth_token", "secrets", problems)
    sender = account.config.get("from_number") or None
    service = account.config.get("messaging_service_sid") or None
    if not sender and not service:
        problems.append("config.from_number or config.messaging_service_sid is required")
    if problems:
        raise ConfigProblems(problems)
    return TwilioConfig(
        sms, sid, token, sender, service,
        account.config.get("status_callback_url") or None,
        account.secrets.get("webhook_shared_key") or None,
    )  # fmt: skip
