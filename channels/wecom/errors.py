"""WeCom error codes, translated once at the channel boundary (issue 11, research B.5)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from conversations.types import SendOutcome

# access_token invalid/expired: fetch a new token and try once more
TOKEN_ERRORS = frozenset({40014, 42001, 42009})
# frequency/concurrency limits and "system busy": back off and retry
BACKOFF_ERRORS = frozenset({45009, 45033, -1})

READABLE: dict[int, str] = {
    -1: "企业微信系统繁忙，稍后重试 (WeCom busy, retrying)",
    40001: "Secret 不正确，请检查应用的 Secret (wrong secret)",
    40013: "CorpID 不正确 (wrong corp id)",
    40014: "access_token 无效 (invalid access token)",
    42001: "access_token 已过期 (access token expired)",
    45009: "接口调用超过频率限制 (frequency limit)",
    45033: "接口并发调用超过限制 (concurrency limit)",
    48002: "API 未授权：请在管理后台为应用开通该接口权限 (API not authorised for this app)",
    60020: "服务器 IP 不在企业可信IP列表中：请在应用的「企业可信IP」中添加本机出口 IP (server IP not in the trusted IP list)",
    60011: "应用没有该成员/部门的可见范围 (member outside the app's visible range)",
    81013: "所有接收人都无效 (all recipients invalid)",
    84061: "对方不是你的客户，无法发送 (not an external contact)",
    40096: "外部联系人 ID 无效 (invalid external userid)",
    41051: "客户已开始聊天，欢迎语未发送 (customer already chatting: welcome not sent)",
    95001: "微信客服 48 小时内最多回复 5 条，已达上限 (kf: 5 messages within 48 h reached)",
    95018: "微信客服会话状态不允许发送 (kf: session state forbids sending)",
    301052: "会话存档服务已过期 (message archive licence expired)",
}


@dataclass(frozen=True)
class WeComApiError(Exception):
    errcode: int
    errmsg: str
    path: str = ""

    def __str__(self) -> str:
        return f"WeCom {self.path} errcode={self.errcode}: {self.readable}"

    @property
    def readable(self) -> str:
        return READABLE.get(self.errcode, self.errmsg or "unknown error")

    @property
    def outcome(self) -> SendOutcome:
        if self.errcode in BACKOFF_ERRORS or self.errcode in TOKEN_ERRORS:
            return SendOutcome.RETRY
        return SendOutcome.FAILED

    @property
    def retry_after(self) -> timedelta | None:
        if self.errcode in (45009, 45033):
            return timedelta(seconds=60)  # WeCom counts per minute
        if self.errcode == -1:
            return timedelta(seconds=2)
        return None
