"""TC3-HMAC-SHA256, Tencent Cloud API 3.0 signing ("签名方法 v3",
cloud.tencent.com/document/api/382/52072; same algorithm as the SDK's
`tencentcloud/common/sign.py::sign_tc3`)."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

ALGORITHM = "TC3-HMAC-SHA256"
JSON_CONTENT = "application/json; charset=utf-8"


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def tc3_string_to_sign(
    host: str, payload: bytes, timestamp: int, service: str, content_type: str = JSON_CONTENT
) -> str:
    canonical_request = "\n".join(
        [
            "POST",
            "/",
            "",
            f"content-type:{content_type}\nhost:{host}\n",
            "content-type;host",
            hashlib.sha256(payload).hexdigest(),
        ]
    )
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    return "\n".join(
        [
            ALGORITHM,
            str(timestamp),
            f"{date}/{service}/tc3_request",
            hashlib.sha256(canonical_request.encode("utf-8")).hexdigest(),
        ]
    )


def tc3_signature(secret_key: str, timestamp: int, service: str, string_to_sign: str) -> str:
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    k_date = _hmac(("TC3" + secret_key).encode("utf-8"), date)
    k_service = _hmac(k_date, service)
    k_signing = _hmac(k_service, "tc3_request")
    return hmac.new(k_signing, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def tc3_authorization(
    secret_id: str,
    secret_key: str,
    host: str,
    payload: bytes,
    timestamp: int,
    service: str = "sms",
    content_type: str = JSON_CONTENT,
) -> str:
    """The `Authorization` header for a POST of `payload` to `host`."""
    to_sign = tc3_string_to_sign(host, payload, timestamp, service, content_type)
    signature = tc3_signature(secret_key, timestamp, service, to_sign)
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    return (
        f"{ALGORITHM} Credential={secret_id}/{date}/{service}/tc3_request, "
        f"SignedHeaders=content-type;host, Signature={signature}"
    )
