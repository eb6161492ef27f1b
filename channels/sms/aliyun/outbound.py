"""SendSms and QuerySendDetails requests and responses (RPC style, parameters in the query).

Field names: "SendSms - 发送短信" help.aliyun.com/document_detail/55284.html and
"QuerySendDetails" help.aliyun.com/document_detail/102352.html; the SDK POSTs with the
parameters in the query string and an empty body.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from channels.sms.gateway import SmsRequest, map_error
from channels.sms.phone import is_mainland_china
from conversations.types import MessageStatus, SendOutcome, SendResult

from .config_check import API_VERSION, AliyunConfig
from .errors import DEFAULT_ERROR, DELIVERED, FLOW_CONTROL_WAIT, SEND_ERRORS
from .signing import EMPTY_SHA256, acs3_authorization, rpc_signature

CHINA = ZoneInfo("Asia/Shanghai")


def gateway_phone(e164: str) -> str:
    """Aliyun wants 11 digits for mainland numbers, country code + number otherwise."""
    return e164[3:] if is_mainland_china(e164) else e164.lstrip("+")


def send_params(request: SmsRequest, config: AliyunConfig) -> dict[str, str]:
    assert request.template is not None
    params = {
        "PhoneNumbers": gateway_phone(request.phone),
        "SignName": config.sms.sign_name,
        "TemplateCode": request.template.code,
        "OutId": request.key,  # echoed back as out_id in SmsReport: our reconciliation key
    }
    if request.params:
        params["TemplateParam"] = json.dumps(dict(request.params), ensure_ascii=False)
    return params


def query_params(e164: str, day: datetime) -> dict[str, str]:
    return {
        "PhoneNumber": gateway_phone(e164),
        "SendDate": day.astimezone(CHINA).strftime("%Y%m%d"),
        "PageSize": "50",
        "CurrentPage": "1",
    }


def signed_request(
    config: AliyunConfig,
    base: str,
    action: str,
    params: Mapping[str, str],
    now: datetime,
    nonce: str | None = None,
) -> tuple[str, dict[str, str], dict[str, str]]:
    """(url, query, headers) of a signed POST with an empty body."""
    nonce = nonce or secrets.token_hex(16)
    host = urlsplit(base).netloc
    url = base + "/"
    if config.signature_version == "rpc":
        query = {
            **params,
            "AccessKeyId": config.access_key_id,
            "Action": action,
            "Format": "JSON",
            "RegionId": config.region,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": nonce,
            "SignatureVersion": "1.0",
            "Timestamp": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": API_VERSION,
        }
        query["Signature"] = rpc_signature("POST", query, config.access_key_secret)
        return url, query, {"host": host}
    query = dict(params)
    headers = {
        "host": host,
        "x-acs-action": action,
        "x-acs-version": API_VERSION,
        "x-acs-date": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "x-acs-signature-nonce": nonce,
        "x-acs-content-sha256": EMPTY_SHA256,
    }
    headers["Authorization"] = acs3_authorization(
        "POST", "/", query, headers, b"", config.access_key_id, config.access_key_secret
    )
    return url, query, headers


def send_result(status: int, body: Mapping[str, Any]) -> SendResult:
    """Map a SendSms answer (a definite answer: the gateway read our request)."""
    code = str(body.get("Code", ""))
    message = str(body.get("Message", ""))
    if status == 200 and code == "OK":
        return SendResult.sent(str(body.get("BizId") or "") or None)
    if not code:
        return SendResult(
            SendOutcome.UNKNOWN, error_code=f"http_{status}", reason="unreadable gateway answer"
        )
    result = map_error(SEND_ERRORS, code, message, default=DEFAULT_ERROR)
    if code == "isv.BUSINESS_LIMIT_CONTROL":
        for window, wait in FLOW_CONTROL_WAIT.items():
            if window in message:  # "触发分钟级流控Permits:1" passes within the window
                return SendResult(
                    SendOutcome.RETRY,
                    error_code=code,
                    reason=result.reason,
                    retry_after=timedelta(seconds=wait),
                )
    return result


def find_sent(body: Mapping[str, Any], key: str) -> SendResult | None:
    """Our send in a QuerySendDetails answer, found by OutId; None if absent."""
    details = (body.get("SmsSendDetailDTOs") or {}).get("SmsSendDetailDTO") or []
    for item in details:
        if str(item.get("OutId", "")) != key:
            continue
        send_status = int(item.get("SendStatus", 1))  # 1 waiting, 2 failed, 3 delivered
        err = str(item.get("ErrCode") or "") or None
        if send_status == 3:
            return SendResult(SendOutcome.SENT, error_code=None, status=MessageStatus.DELIVERED)
        if send_status == 2:
            return SendResult(
                SendOutcome.SENT,
                error_code=err,
                reason=f"accepted, then not delivered ({err})",
                status=MessageStatus.FAILED,
            )
        return SendResult(SendOutcome.SENT, status=MessageStatus.SENT)
    return None


def delivered(err_code: str) -> bool:
    return err_code == DELIVERED
