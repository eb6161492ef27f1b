"""WeCom error codes, translated once at the channel boundary (issue 11, research B.5)."""

from __future__ import annotations

from datetime import timedelta

from conversations.types import SendOutcome

# access_token invalid/expired: fetch a new token and try once more
TOKEN_ERRORS = frozenset({40014, 42001, 42009})
# frequency/concurrency limits: every caller of the credential backs off
LIMIT_ERRORS = frozenset({45009, 45033})
# "system busy": retry a few times with jitter
BUSY_ERRORS = frozenset({-1})
BACKOFF_ERRORS = LIMIT_ERRORS | BUSY_ERRORS
# 微信客服: the session state or the 5-per-48-h budget forbids sending: hand off to a
# human instead of failing (the auto-reply engine reads these codes, issue 11)
KF_HANDOFF_CODES = frozenset({"95018", "95001"})

READABLE: dict[int, str] = {
    -1: "企业微信系统繁忙，稍后重试 (WeCom busy, retrying)",
    40001: "Secret 不正确，请检查应用的 Secret (wrong secret)",
    40004: "不合法的媒体文件类型 (invalid media type)",
    40005: "媒体文件大小不合法 (invalid media size)",
    40007: "媒体文件 ID 无效或已过期（3 天） (invalid or expired media_id)",
    40013: "CorpID 不正确 (wrong corp id)",
    40014: "access_token 无效 (invalid access token)",
    40058: "参数不合法 (invalid parameter)",
    40068: "标签 ID 无效 (invalid tag id)",
    40071: "标签名已存在或企业标签数已达上限 3000 (tag exists or 3,000 corp tags reached)",
    40096: "外部联系人 ID 无效 (invalid external userid)",
    40097: "该成员尚未离职 (member has not resigned)",
    40098: "成员尚未实名认证 (member not real-name verified)",
    40128: "该客户 90 天内已被转接 2 次 (customer already transferred twice in 90 days)",
    41048: "没有可发送的客户 (no customer to send to)",
    41051: "客户已开始聊天，欢迎语未发送 (customer already chatting: welcome not sent)",
    41063: "群发消息正在派发中，请稍后 (group send still being dispatched)",
    42001: "access_token 已过期 (access token expired)",
    45002: "消息内容超过长度限制 (content too long)",
    45009: "接口调用超过频率限制 (frequency limit)",
    45033: "接口并发调用超过限制 (concurrency limit)",
    48002: "API 未授权：请在管理后台为应用开通该接口权限 (API not authorised for this app)",
    60011: "应用没有该成员/部门的可见范围 (member outside the app's visible range)",
    60020: "服务器 IP 不在企业可信IP列表中：请在应用的「企业可信IP」中添加本机出口 IP (server IP not in the trusted IP list)",
    60111: "成员 UserID 不存在 (unknown member userid)",
    81013: "所有接收人都无效 (all recipients invalid)",
    84061: "对方不是你的客户，无法发送 (not an external contact)",
    86001: "客户群 ID 无效 (invalid chat id)",
    95000: "微信客服账号 open_kfid 无效 (invalid kf account)",
    95001: "微信客服 48 小时内最多回复 5 条，已达上限 (kf: 5 messages within 48 h reached)",
    95004: "微信客服账号不存在 (kf account does not exist)",
    95007: "sync_msg 的 token 无效或已过期 (invalid kf message token)",
    95017: "微信客服 API 开关未开启 (kf API switch is off)",
    95018: "微信客服会话状态不允许发送：会话已转人工或已结束 (kf: session state forbids sending)",
    301052: "会话存档服务已过期，请续费 (message archive licence expired)",
}

# What "test connection" says, in words an operator acts on (issue 11)
CONNECTION_ADVICE: dict[int, str] = {
    60020: (
        "企业微信拒绝了本服务器的 IP：请在管理后台 → 应用管理 → 本应用 → 企业可信IP 中加入"
        "本服务器的公网出口 IP，保存后再试。 (WeCom refused this server's IP address: add the "
        "server's public outgoing IP under App Management → this app → Trusted IPs, then retry.)"
    ),
    48002: (
        "该 Secret 所属应用没有调用此接口的权限：请在管理后台为应用开启对应权限（如「客户联系」"
        "的「可调用应用」、微信客服的「通过API管理微信客服账号」）。 (The app owning this secret "
        "is not allowed to call this API: grant the permission in the admin console, e.g. add "
        "the app to Customer Contact's 'apps that may call the API', or let it manage kf accounts.)"
    ),
    40001: (
        "Secret 不正确：请从管理后台重新复制该应用（或客户联系 / 微信客服 / 会话存档）的 Secret，"
        "注意不要混用不同功能的 Secret。 (Wrong secret: copy it again from the admin console; "
        "the app, Customer Contact, kf and archive each have their own secret.)"
    ),
    40013: (
        "企业 ID (CorpID) 不正确：请在管理后台 → 我的企业 → 企业信息 底部复制企业 ID。 (Wrong corp "
        "ID: copy it from My Company → Company Information, at the bottom of the page.)"
    ),
}


class WeComApiError(Exception):
    """An API answer with errcode ≠ 0 (or an HTTP failure, as -1)."""

    def __init__(self, errcode: int, errmsg: str, path: str = "") -> None:
        super().__init__(errcode, errmsg, path)
        self.errcode = errcode
        self.errmsg = errmsg
        self.path = path

    def __str__(self) -> str:
        return f"WeCom {self.path} errcode={self.errcode}: {self.readable}"

    @property
    def readable(self) -> str:
        return READABLE.get(self.errcode, self.errmsg or "unknown error")

    @property
    def advice(self) -> str:
        """The plain-words explanation for 'test connection' (falls back to readable)."""
        return CONNECTION_ADVICE.get(self.errcode, self.readable)

    @property
    def outcome(self) -> SendOutcome:
        if self.errcode in BACKOFF_ERRORS or self.errcode in TOKEN_ERRORS:
            return SendOutcome.RETRY
        return SendOutcome.FAILED

    @property
    def retry_after(self) -> timedelta | None:
        if self.errcode in LIMIT_ERRORS:
            return timedelta(seconds=60)  # WeCom counts per minute
        if self.errcode == -1:
            return timedelta(seconds=2)
        return None
