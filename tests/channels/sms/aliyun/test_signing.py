"""Aliyun request signing against the documentation's worked examples and the official
SDK's algorithm (alibabacloud-openapi-util, a test-only dependency) as an oracle."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from channels.sms.aliyun.signing import (
    EMPTY_SHA256,
    acs3_authorization,
    percent_encode,
    rpc_signature,
    rpc_string_to_sign,
)

oracle = pytest.importorskip("alibabacloud_openapi_util.client")

# "V3版本请求体&签名机制" help.aliyun.com/document_detail/2593177.html (公共请求头 example)
DOC_V3_HEADERS = {
    "host": "ecs.cn-shanghai.aliyuncs.com",
    "x-acs-action": "RunInstances",
    "x-acs-version": "2014-05-26",
    "x-acs-date": "2023-10-26T09:01:01Z",
    "x-acs-signature-nonce": "d410180a5abf7fe235dd9b74aca91fc0",
    "x-acs-content-sha256": EMPTY_SHA256,
}
DOC_V3_QUERY = {
    "ImageId": "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd",
    "RegionId": "cn-shanghai",
}

# RPC "签名机制" example: DescribeRegions signed with testsecret
DOC_RPC_PARAMS = {
    "Timestamp": "2016-02-23T12:46:24Z",
    "Format": "XML",
    "AccessKeyId": "testid",
    "Action": "DescribeRegions",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
    "Version": "2014-05-26",
    "SignatureVersion": "1.0",
}


def test_acs3_matches_the_documented_example() -> None:
    auth = acs3_authorization(
        "POST", "/", DOC_V3_QUERY, DOC_V3_HEADERS, b"", "YourAccessKeyId", "YourAccessKeySecret"
    )
    assert auth == (
        "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,"
        "SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;"
        "x-acs-signature-nonce;x-acs-version,"
        "Signature=e521358f7776c97df52e6b2891a8bc73026794a071b50c3323388c4e0df64804"
    )


def test_rpc_matches_the_documented_example() -> None:
    assert rpc_signature("GET", DOC_RPC_PARAMS, "testsecret") == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="


def test_rpc_string_to_sign_double_encodes_the_timestamp() -> None:
    assert "Timestamp%3D2016-02-23T12%253A46%253A24Z" in rpc_string_to_sign("GET", DOC_RPC_PARAMS)


def test_percent_encoding_follows_aliyun_rules() -> None:
    assert percent_encode("a b*c~d/") == "a%20b%2Ac~d%2F"


class _SdkRequest:
    def __init__(self, query: dict[str, str], headers: dict[str, str]) -> None:
        self.method = "POST"
        self.pathname = "/"
        self.query = query
        self.headers = headers


text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)


@given(
    params=st.dictionaries(
        st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,12}", fullmatch=True), text, max_size=6
    )
)
def test_acs3_agrees_with_the_sdk_algorithm(params: dict[str, str]) -> None:
    headers = dict(DOC_V3_HEADERS, **{"x-acs-action": "SendSms", "x-acs-version": "2017-05-25"})
    ours = acs3_authorization("POST", "/", params, headers, b"", "AKID", "s3cr3t/秘")
    sdk = oracle.Client.get_authorization(
        _SdkRequest(params, headers),
        "ACS3-HMAC-SHA256",
        hashlib.sha256(b"").hexdigest(),
        "AKID",
        "s3cr3t/秘",
    )
    assert ours == sdk


@given(
    params=st.dictionaries(
        st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,12}", fullmatch=True), text, max_size=6
    )
)
def test_rpc_agrees_with_the_sdk_algorithm(params: dict[str, str]) -> None:
    assert rpc_signature("POST", params, "s3cr3t") == oracle.Client.get_rpcsignature(
        params, "POST", "s3cr3t"
    )
