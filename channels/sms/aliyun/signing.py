"""Alibaba Cloud OpenAPI request signing, as the official SDK does it.

- ACS3-HMAC-SHA256 (V3, the SDK default): "V3版本请求体&签名机制",
  help.aliyun.com/document_detail/2593177.html.
- RPC HMAC-SHA1 (SignatureVersion 1.0), kept as an option for old RAM policies:
  the "签名机制" page of the RPC API reference (worked example: testsecret →
  OLeaidS1JvxuMvnyHOwuJ+uX5qY=).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import quote

ACS3 = "ACS3-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def percent_encode(value: str) -> str:
    """RFC 3986 encoding as Aliyun wants it: space → %20, * → %2A, ~ kept."""
    return quote(value, safe="~", encoding="utf-8")


def canonical_query(query: Mapping[str, str]) -> str:
    return "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(query.items()))


def _signed_header_names(headers: Mapping[str, str]) -> list[str]:
    # the gateway requires host, content-type and every x-acs-* header to be signed
    return sorted(
        k.lower()
        for k in headers
        if k.lower() in ("host", "content-type") or k.lower().startswith("x-acs-")
    )


def acs3_string_to_sign(
    method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str], body: bytes
) -> tuple[str, str]:
    """(StringToSign, SignedHeaders) for a V3 request."""
    lower = {k.lower(): v.strip() for k, v in headers.items()}
    names = _signed_header_names(lower)
    canonical_headers = "".join(f"{name}:{lower[name]}\n" for name in names)
    signed = ";".join(names)
    canonical_request = "\n".join(
        [
            method.upper(),
            path or "/",
            canonical_query(query),
            canonical_headers,
            signed,
            hashlib.sha256(body).hexdigest(),
        ]
    )
    digest = hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()
    return f"{ACS3}\n{digest}", signed


def acs3_authorization(
    method: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    body: bytes,
    access_key_id: str,
    access_key_secret: str,
) -> str:
    """The `Authorization` header value for a V3 request."""
    to_sign, signed = acs3_string_to_sign(method, path, query, headers, body)
    signature = hmac.new(
        access_key_secret.encode("utf-8"), to_sign.encode("utf-8"), hashlib.sha256
    ).hexdigest()
    return f"{ACS3} Credential={access_key_id},SignedHeaders={signed},Signature={signature}"


def parse_authorization(value: str) -> dict[str, str]:
    """Split 'ACS3-HMAC-SHA256 Credential=…,SignedHeaders=…,Signature=…'."""
    algorithm, _, rest = value.partition(" ")
    parts = dict(p.strip().split("=", 1) for p in rest.split(",") if "=" in p)
    parts["algorithm"] = algorithm
    return parts


def rpc_string_to_sign(method: str, params: Mapping[str, str]) -> str:
    return f"{method.upper()}&{percent_encode('/')}&{percent_encode(canonical_query(params))}"


def rpc_signature(method: str, params: Mapping[str, str], access_key_secret: str) -> str:
    """Base64(HMAC-SHA1(secret + "&", StringToSign)) over every parameter but Signature."""
    unsigned = {k: v for k, v in params.items() if k != "Signature"}
    digest = hmac.new(
        (access_key_secret + "&").encode("utf-8"),
        rpc_string_to_sign(method, unsigned).encode("utf-8"),
        hashlib.sha1,
    ).digest()
    return base64.b64encode(digest).decode("ascii")
