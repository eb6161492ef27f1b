"""The interface of Tencent's Finance SDK (libWeWorkFinanceSdk_C.so) as crmbot uses it,
and its errors in operator's words.

Two implementations: `native.NativeFinanceSdk` binds the shipped .so with ctypes;
`simulated.SimulatedFinanceSdk` talks to the WeCom simulator's archive double (tests and
sandbox mode). Both are async: the native calls block, so they run in a thread.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class MediaChunk:
    data: bytes
    next_index: str  # pass back as indexbuf for the next chunk
    finished: bool


class FinanceSdk(Protocol):
    async def get_chat_data(self, seq: int, limit: int, sdk_timeout: int) -> str:
        """GetChatData: the JSON text {errcode, errmsg, chatdata: [...]} after `seq`."""
        ...

    async def decrypt_data(self, random_key: str, encrypt_chat_msg: str) -> str:
        """DecryptData: the chat message JSON, given the RSA-decrypted random key."""
        ...

    async def get_media_data(self, sdkfileid: str, index: str, sdk_timeout: int) -> MediaChunk:
        """GetMediaData: one chunk of an archived file (call again with next_index)."""
        ...


# SDK return codes and service errcodes an operator can act on (Finance SDK docs; 301052
# and the IP codes from users' reports — research A.4, B.5)
KEY_MISMATCH = 10006  # DecryptData: the random key (so the private key) is wrong
EXPLAIN: Mapping[int, str] = {
    10000: "参数错误 (bad parameter given to the SDK)",
    10001: "网络错误：无法连接企业微信 (network error reaching WeCom)",
    10002: "数据解析失败 (could not parse the SDK's answer)",
    10003: "系统失败 (SDK system failure)",
    10004: "会话存档 Secret 错误：请使用「管理工具 → 会话内容存档」中的 Secret (wrong archive secret)",
    10005: "fileid 错误 (bad media file id)",
    10006: "解密失败：私钥与 publickey_ver 不匹配 (decryption failed: wrong private key for this key version)",
    10007: "找不到消息加密版本 (unknown key version)",
    10008: "encrypt_random_key 解析失败：私钥不对 (cannot decrypt the random key: wrong private key)",
    10009: "服务器 IP 不在会话存档的可信 IP 列表中 (server IP not trusted for the archive)",
    10010: "数据已过期 (data expired)",
    10011: "证书错误 (certificate error)",
    301042: "服务器 IP 不在会话存档的可信 IP 列表中 (server IP not trusted for the archive)",
    301052: "会话存档服务已过期，请在管理后台续费 (message archive licence expired)",
}


class ArchiveError(Exception):
    """A failure the operator must fix (key, licence, IP, SDK); the cursor does not move."""

    def __init__(self, code: int, detail: str = "") -> None:
        self.code = code
        self.detail = detail
        super().__init__(f"archive error {code}: {EXPLAIN.get(code, detail or 'unknown error')}")

    @property
    def readable(self) -> str:
        return EXPLAIN.get(self.code, self.detail or f"错误 {self.code} (error {self.code})")


class ArchiveConfigError(Exception):
    """crmbot's own configuration is incomplete (no SDK path, no key for a version)."""
