"""Settings of an `sms.aliyun` account, checked all at once.

config:  access_key_id, sign_name, templates, signature_version ("v3" | "rpc"),
         region (default cn-hangzhou), plus the shared keys of `channels.sms.account`
secrets: access_key_secret
"""

from __future__ import annotations

from dataclasses import dataclass

from channels.sms.account import ConfigProblems, SmsSettings, read_settings, require
from channels.sms.templates import VariableStyle
from conversations.types import AccountRef

KIND = "sms.aliyun"
DEFAULT_ENDPOINT = "https://dysmsapi.aliyuncs.com"
API_VERSION = "2017-05-25"
DEFAULT_RATE = 20.0  # per second per account; the API allows far more (5000/s per user)


@dataclass(frozen=True)
class AliyunConfig:
    sms: SmsSettings
    access_key_id: str
    access_key_secret: str
    signature_version: str
    region: str


def load_config(account: AccountRef, api_base_override: str | None = None) -> AliyunConfig:
    """Parse the account row; raises ConfigProblems listing every problem."""
    problems: list[str] = []
    sms = read_settings(
        KIND,
        account.config,
        VariableStyle.NAMED,
        default_rate=DEFAULT_RATE,
        default_grace=120.0,
        problems=problems,
        api_base_override=api_base_override,
    )
    key_id = require(account.config, "access_key_id", "config", problems)
    secret = require(account.secrets, "access_key_secret", "secrets", problems)
    require(account.config, "sign_name", "config", problems)
    version = str(account.config.get("signature_version", "v3"))
    if version not in ("v3", "rpc"):
        problems.append("signature_version must be v3 (ACS3-HMAC-SHA256) or rpc (HMAC-SHA1)")
    if problems:
        raise ConfigProblems(problems)
    return AliyunConfig(
        sms, key_id, secret, version, str(account.config.get("region", "cn-hangzhou"))
    )
