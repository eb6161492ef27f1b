"""SendSms and PullSmsSendStatusByPhoneNumber (JSON bodies, TC3-signed).

Fields: "SendSms" cloud.tencent.com/document/api/382/55981; the pull API's models in
`tencentcloud/sms/v20210111/models.py`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from channels.sms.gateway import SmsRequest, map_error
from conversations.types import MessageStatus, SendOutcome, SendResult

from .config_check import API_VERSION, TencentConfig
from .errors import DEFAULT_ERROR, SEND_ERRORS
from .signing import JSON_CONTENT, tc3_authorization


def send_body(request: SmsRequest, config: TencentConfig) -> dict[str, Any]:
    assert request.template is not None
    names = request.template.variables  # "1", "2", … in order
    return {
        "PhoneNumberSet": [request.phone],
        "SmsSdkAppId": config.sdk_app_id,
        "SignName": config.sms.sign_name,
        "TemplateId": request.template.code,
        "TemplateParamSet": [str(request.params[n]) for n in names],
        "SessionContext": request.key,  # echoed back: our reconciliation key
    }


def lookup_body(
    request: SmsRequest, config: TencentConfig, since: float, until: float
) -> dict[str, Any]:
    return {
        "BeginTime": int(since) - 60,
        "EndTime": int(until) + 60,
        "Offset": 0,
        "Limit": 100,
        "PhoneNumber": request.phone,
        "SmsSdkAppId": config.sdk_app_id,
    }


def signed_request(
    config: TencentConfig, base: str, action: str, body: Mapping[str, Any], timestamp: int
) -> tuple[bytes, dict[str, str]]:
    payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    host = urlsplit(base).netloc
    headers = {
        "Content-Type": JSON_CONTENT,
        "Host": host,
        "X-TC-Action": action,
        "X-TC-Version": API_VERSION,
        "X-TC-Timestamp": str(timestamp),
        "X-TC-Region": config.region,
        "Authorization": tc3_authorization(
            config.secret_id, config.secret_key, host, payload, timestamp
        ),
    }
    return payload, headers


def send_result(body: Mapping[str, Any]) -> SendResult:
    response = body.get("Response")
    if not isinstance(response, Mapping):
        return SendResult(SendOutcome.UNKNOWN, error_code="unreadable", reason="unreadable answer")
    error = response.get("Error")
    if isinstance(error, Mapping):
        code = str(error.get("Code", ""))
        return map_error(SEND_ERRORS, code, str(error.get("Message", "")), default=DEFAULT_ERROR)
    statuses = response.get("SendStatusSet") or []
    if not statuses:
        return SendResult(SendOutcome.UNKNOWN, error_code="empty", reason="no SendStatusSet")
    status = statuses[0]
    code = str(status.get("Code", ""))
    if code == "Ok":
        return SendResult.sent(str(status.get("SerialNo") or "") or None)
    return map_error(SEND_ERRORS, code, str(status.get("Message", "")), default=DEFAULT_ERROR)


def find_sent(body: Mapping[str, Any], key: str) -> SendResult | None:
    response = body.get("Response") or {}
    for item in response.get("PullSmsSendStatusSet") or []:
        if str(item.get("SessionContext", "")) != key:
            continue
        ok = str(item.get("ReportStatus", "")).upper() == "SUCCESS"
        return SendResult(
            SendOutcome.SENT,
            provider_message_id=str(item.get("SerialNo") or "") or None,
            status=MessageStatus.DELIVERED if ok else MessageStatus.FAILED,
            error_code=None if ok else str(item.get("Description") or "") or None,
        )
    return None
