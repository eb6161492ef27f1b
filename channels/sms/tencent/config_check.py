"""Settings of an `sms.tencent` account, checked all at once.

config:  secret_id, sdk_app_id (SmsSdkAppId, e.g. 1400006666), sign_name (签名内容),
         templates (numbered {1} variables), region (default ap-guangzhou), shared keys
secrets: secret_key
"""

from __future__ import annotations

from dataclasses import dataclass

from channels.sms.account import ConfigProblems, SmsSettings, read_settings, require
from channels.sms.templates import VariableStyle
from conversations.types import AccountRef

KIND = "sms.tencent"
DEFAULT_ENDPOINT = "https://sms.tencentcloudapi.com"
API_VERSION = "2021-01-11"
DEFAULT_RATE = 20.0


@dataclass(frozen=True)
class TencentConfig:
    sms: SmsSettings
    secret_id: str
    secret_key: str
    sdk_app_id: str
    region: str


def load_config(account: AccountRef) -> TencentConfig:
    problems: list[str] = []
    sms = read_settings(
        KIND,
        account.config,
        VariableStyle.NUMBERED,
        default_rate=DEFAULT_RATE,
        # PullSmsSendStatusByPhoneNumber lists a send only once its report is in
        default_grace=600.0,
        problems=problems,
    )
    secret_id = require(account.config, "secret_id", "config", problems)
    app_id = str(account.config.get("sdk_app_id", "")).strip()
    if not app_id.isdigit():
        problems.append("config.sdk_app_id (SmsSdkAppId, digits) is required")
    require(account.config, "sign_name", "config", problems)
    secret_key = require(account.secrets, "secret_key", "secrets", problems)
    if problems:
        raise ConfigProblems(problems)
    return TencentConfig(
        sms, secret_id, secret_key, app_id, str(account.config.get("region", "ap-guangzhou"))
    )
