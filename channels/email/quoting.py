"""Quoted-reply and signature stripping, so the inbox shows what the customer wrote.

mail-parser-reply handles English and European clients; its Chinese rule misses Gmail's
"在…写道：" line and leaves Foxmail's "原始邮件" separator behind (research note §3c), so
our own Chinese patterns run first. The full body is always kept in the payload.
"""

from __future__ import annotations

import re

from mailparser_reply import EmailReplyParser

# Each pattern marks the first line of quoted material; everything from there is cut.
_QUOTE_STARTS = [
    # Gmail / 163 / QQ mail in Chinese: "在 2024年5月6日周一 10:00，张三 <a@b.cn> 写道：",
    # sometimes wrapped onto a second line before the address
    re.compile(r"^[ \t>]*在[^\n]{0,200}(?:\n[^\n]{0,200})?写道\s*[:：]\s*$", re.M),
    re.compile(r"^[ \t>]*於[^\n]{0,200}(?:\n[^\n]{0,200})?寫道\s*[:：]\s*$", re.M),  # zh-TW Gmail
    # Foxmail / QQ mail: "------------------ 原始邮件 ------------------"
    re.compile(
        r"^[ \t>]*-{2,}\s*(?:原始邮件|原始郵件|Original Message|回复的原邮件)\s*-{2,}", re.M | re.I
    ),
    # Outlook (Chinese UI): header block "发件人: … 发送时间: …" (or 日期/时间/Sent)
    re.compile(
        r"^[ \t>]*\*?(?:发件人|寄件者|From)\s*\*?[:：][^\n]*\n(?:[^\n]*\n){0,3}?"
        r"[ \t>]*\*?(?:发送时间|日期|时间|寄件日期|Sent|Date)\s*\*?[:：]",
        re.M,
    ),
    # Outlook's separator line above the header block
    re.compile(r"^[ \t]*_{20,}\s*$", re.M),
    # English clients: "On Mon, May 6, 2024 at 10:00 AM Bob <b@x> wrote:"
    re.compile(r"^[ \t>]*On [^\n]{0,200}(?:\n[^\n]{0,200})?wrote:\s*$", re.M),
    # 163/126 mobile and others: "--- 原邮件 ---", "-----邮件原件-----"
    re.compile(r"^[ \t>]*-{2,}\s*(?:原邮件|邮件原件|转发邮件信息)\s*-{2,}", re.M),
]

# Signatures: cut from here to the end when something was written above.
_SIGNATURE_STARTS = [
    re.compile(r"^-- ?$", re.M),  # RFC 3676 §4.3 signature separator
    re.compile(r"^[ \t]*(?:发自我的|來自我的|来自我的|从我的|從我的)[^\n]{0,40}$", re.M),
    re.compile(r"^[ \t]*(?:Sent from my|Get Outlook for|Sent from Mail for)[^\n]{0,60}$", re.M),
    re.compile(
        r"^[ \t]*(?:发自|来自)\s*(?:网易邮箱|QQ邮箱|手机QQ邮箱|企业微信|Foxmail|iPhone|Android)",
        re.M,
    ),
]

_PARSER = EmailReplyParser(languages=["zh", "en"])


def strip_quoted(body: str) -> str:
    """The part of `body` the sender wrote now, without quoted history or signature.

    Falls back to the whole body when stripping would leave nothing (a forward, or a
    reply written below the quote)."""
    text = body.replace("\r\n", "\n").replace("\r", "\n")
    cut = len(text)
    for pattern in _QUOTE_STARTS:
        match = pattern.search(text)
        if match and match.start() < cut and text[: match.start()].strip():
            cut = match.start()
    text = text[:cut]
    text = _drop_trailing_quote_lines(text)
    for pattern in _SIGNATURE_STARTS:
        match = pattern.search(text)
        if match and text[: match.start()].strip():
            text = text[: match.start()]
    if cut == len(body.replace("\r\n", "\n").replace("\r", "\n")):
        # none of our patterns fired: let mail-parser-reply try its (English, European) rules
        try:
            reply = _PARSER.parse_reply(text)
        except (re.error, IndexError, ValueError):
            reply = None
        if reply and reply.strip():
            text = reply
    stripped = text.strip()
    return stripped if stripped else body.strip()


def _drop_trailing_quote_lines(text: str) -> str:
    lines = text.rstrip().split("\n")
    while lines and (lines[-1].lstrip().startswith(">") or not lines[-1].strip()):
        lines.pop()
    return "\n".join(lines) if lines else text
